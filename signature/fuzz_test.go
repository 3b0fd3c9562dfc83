package signature

import (
	"bytes"
	"testing"
)

// FuzzSignVerify signs arbitrary messages: a signature verifies under its
// key, and not for another body or another key. Seeds:
// testdata/fuzz/FuzzSignVerify.
func FuzzSignVerify(f *testing.F) {
	f.Add(bytes.Repeat([]byte{7}, 32), "msg_1", int64(1700000000), []byte(`{"event":"task.created"}`))

	f.Fuzz(func(t *testing.T, key []byte, id string, timestamp int64, body []byte) {
		if len(key) < MinKeyBytes || len(key) > MaxKeyBytes {
			return
		}

		header := Header([][]byte{key}, id, timestamp, body)
		if !Verify(key, header, id, timestamp, body) {
			t.Fatalf("signature %q does not verify", header)
		}
		if Verify(key, header, id, timestamp, append(append([]byte(nil), body...), 'x')) {
			t.Fatal("signature verifies a longer body")
		}
		other := append([]byte(nil), key...)
		other[0] ^= 1
		if Verify(other, header, id, timestamp, body) {
			t.Fatal("signature verifies under another key")
		}
	})
}

// FuzzParseSecret parses arbitrary secrets without panicking; what it
// accepts has a key of an allowed size.
func FuzzParseSecret(f *testing.F) {
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

	f.Fuzz(func(t *testing.T, secret string) {
		key, err := ParseSecret(secret)
		if err == nil && (len(key) < MinKeyBytes || len(key) > MaxKeyBytes) {
			t.Fatalf("accepted a %d-byte key", len(key))
		}
	})
}
