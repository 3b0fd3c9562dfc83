package api

import (
	"os"
	"path/filepath"
	"testing"
)

// TestScanPublishTakesFFmateBodies checks that FFmate's real webhook bodies
// take the one-pass decoder and decode as encoding/json decodes them.
func TestScanPublishTakesFFmateBodies(t *testing.T) {
	files, err := filepath.Glob("../testdata/ffmate/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no FFmate fixtures found: %v", err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		inputs, _, ok := scanPublish(body, DefaultMaxJSONDepth)
		if !ok {
			t.Errorf("%s: scanPublish passed it to encoding/json", filepath.Base(file))
			continue
		}
		want, _, err := decodeInputs(body)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(file), err)
		}
		if *inputs[0].Event != *want[0].Event {
			t.Errorf("%s: event %q, expected %q", filepath.Base(file), *inputs[0].Event, *want[0].Event)
		}
		if string(inputs[0].Data) != string(want[0].Data) {
			t.Errorf("%s: data differs from encoding/json's", filepath.Base(file))
		}
	}
}

// TestScanPublishLeavesOtherBodies lists bodies that scanPublish must pass
// to encoding/json: errors, and valid bodies outside its usual shape.
func TestScanPublishLeavesOtherBodies(t *testing.T) {
	bodies := map[string]string{
		"empty":                ``,
		"empty array":          `[]`,
		"array of non-objects": `[1]`,
		"missing data":         `{"event":"task.created"}`,
		"missing event":        `{"data":{}}`,
		"null event":           `{"event":null,"data":{}}`,
		"number timestamp":     `{"event":"task.created","data":{},"timestamp":1}`,
		"escaped event":        `{"event":"task\u002ecreated","data":{}}`,
		"escaped key":          `{"ev\u0065nt":"task.created","data":{}}`,
		"key in capitals":      `{"Event":"task.created","data":{}}`,
		"unknown key":          `{"event":"task.created","data":{},"source":"x"}`,
		"duplicate event":      `{"event":"task.created","event":"task.deleted","data":{}}`,
		"duplicate data":       `{"event":"task.created","data":1,"data":2}`,
		"trailing data":        `{"event":"task.created","data":{}} {}`,
		"trailing comma":       `{"event":"task.created","data":[1,],}`,
		"leading zero":         `{"event":"task.created","data":01}`,
		"bare fraction":        `{"event":"task.created","data":1.}`,
		"bad escape":           `{"event":"task.created","data":"\x"}`,
		"short unicode escape": `{"event":"task.created","data":"\u12"}`,
		"control character":    "{\"event\":\"task.created\",\"data\":\"a\tb\"}",
		"too deep":             `{"event":"task.created","data":[[[[[[[[[[1]]]]]]]]]]}`,
		"unclosed":             `{"event":"task.created","data":{"a":1}`,
	}
	for name, body := range bodies {
		if _, _, ok := scanPublish([]byte(body), 8); ok {
			t.Errorf("%s: scanPublish accepted %s", name, body)
		}
	}
}
