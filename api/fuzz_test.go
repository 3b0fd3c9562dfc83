package api

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

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

// FuzzScanPublish checks the one-pass publish decoder against encoding/json:
// every body that scanPublish accepts must decode with decodePublish to the
// same events, data and timestamps, and nest no deeper than allowed.
// Seeds: FFmate's real bodies and a few shapes below.
func FuzzScanPublish(f *testing.F) {
	fixtures, _ := filepath.Glob("../testdata/ffmate/*.json")
	for _, file := range fixtures {
		if body, err := os.ReadFile(file); err == nil {
			f.Add(body)
		}
	}
	f.Add([]byte(`{"event":"task.created","data":{"uuid":"x"}}`))
	f.Add([]byte(`[{"event":"batch.created","data":[1,2],"timestamp":"2025-02-13T14:05:32Z"}]`))
	f.Add([]byte(` {"data" : null , "event":"task.deleted"} `))
	f.Add([]byte(`{"event":"task.created","data":{"a":"\u00e9\n","b":[-0.5e+3,true,false,null,{}]}}`))

	const maxDepth = 8
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) {
			return // parsePublish rejects it before scanPublish
		}
		inputs, isArray, ok := scanPublish(body, maxDepth)
		if !ok {
			return
		}
		if depth := jsonDepth(body); depth > maxDepth {
			t.Fatalf("accepted a body nested %d levels deep, more than %d", depth, maxDepth)
		}

		want, wantArray, err := decodeInputs(body)
		if err != nil {
			t.Fatalf("accepted a body that encoding/json rejects: %v", err)
		}
		if isArray != wantArray {
			t.Fatalf("array: %v, encoding/json: %v", isArray, wantArray)
		}
		if len(inputs) != len(want) {
			t.Fatalf("%d events, encoding/json: %d", len(inputs), len(want))
		}
		for i := range want {
			if got, exp := deref(inputs[i].Event), deref(want[i].Event); got != exp {
				t.Errorf("event %d: name %q, encoding/json: %q", i, got, exp)
			}
			if got, exp := deref(inputs[i].Timestamp), deref(want[i].Timestamp); got != exp {
				t.Errorf("event %d: timestamp %q, encoding/json: %q", i, got, exp)
			}
			if !bytes.Equal(inputs[i].Data, want[i].Data) {
				t.Errorf("event %d: data %q, encoding/json: %q", i, inputs[i].Data, want[i].Data)
			}
		}
	})
}

// deref returns *p, or "<nil>" for a nil p.
func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
