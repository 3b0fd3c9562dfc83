package api

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// BenchmarkParsePublish measures the work of a publish before the append:
// the UTF-8 and depth checks and the decoding, for the load tool's 1 KiB
// event and for FFmate's task.created body.
func BenchmarkParsePublish(b *testing.B) {
	ffmate, err := os.ReadFile("../testdata/ffmate/task.created.json")
	if err != nil {
		b.Fatal(err)
	}
	bodies := map[string][]byte{
		"1KiB":   fmt.Appendf(nil, `{"event":"task.created","data":{"sent":1,"pad":%q}}`, strings.Repeat("x", 984)),
		"ffmate": ffmate,
	}
	for name, body := range bodies {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := parsePublish(body, DefaultMaxJSONDepth); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
