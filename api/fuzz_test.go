package api

import (
	"encoding/json"
	"testing"

	"github.com/hooklog/hooklog/catalog"
)

// FuzzDecodePublish feeds arbitrary bodies to the publish decoder: it must
// not panic, and what it accepts must be catalog events with valid JSON data.
// Seeds: testdata/fuzz/FuzzDecodePublish, FFmate's real bodies among them.
func FuzzDecodePublish(f *testing.F) {
	f.Add([]byte(`{"event":"task.created","data":{"uuid":"x"}}`))
	f.Add([]byte(`[{"event":"batch.created","data":[1,2]}]`))

	f.Fuzz(func(t *testing.T, body []byte) {
		_ = jsonDepth(body)

		entries, _, err := decodePublish(body)
		if err != nil {
			return
		}
		if len(entries) == 0 {
			t.Fatal("accepted a body with no event")
		}
		for _, e := range entries {
			if !catalog.Valid(e.Event) {
				t.Fatalf("accepted event %q outside the catalog", e.Event)
			}
			if !json.Valid(e.Data) {
				t.Fatalf("accepted invalid JSON data %q", e.Data)
			}
		}
	})
}
