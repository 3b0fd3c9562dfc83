package signature

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// The example of the Standard Webhooks specification: secret, message and
// the signature it gives.
func TestSignSpecificationExample(t *testing.T) {
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature = %s, want %s", got, want)
	}
}

func TestNewSecretParses(t *testing.T) {
	secret, err := NewSecret()
	if err != nil {
		t.Fatalf("new secret: %v", err)
	}
	key, err := ParseSecret(secret)
	if err != nil {
		t.Fatalf("parse %s: %v", secret, err)
	}
	if len(key) != generatedKeySize {
		t.Errorf("key has %d bytes, want %d", len(key), generatedKeySize)
	}
	other, _ := NewSecret()
	if other == secret {
		t.Error("two new secrets are equal")
	}
}

func TestParseSecretRejects(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 23))
	long := base64.StdEncoding.EncodeToString(make([]byte, 65))
	for _, secret := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!", "whsec_" + short, "whsec_" + long} {
		if _, err := ParseSecret(secret); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrInvalidSecret", secret, err)
		}
	}
}

func TestHeaderCarriesEveryKey(t *testing.T) {
	oldKey, newKey := make([]byte, 24), make([]byte, 32)
	newKey[0] = 1
	body := []byte(`{"event":"task.created"}`)

	header := Header([][]byte{newKey, oldKey}, "id-1", 1700000000, body)
	if n := len(strings.Fields(header)); n != 2 {
		t.Fatalf("header %q has %d signatures, want 2", header, n)
	}
	for _, key := range [][]byte{oldKey, newKey} {
		if !Verify(key, header, "id-1", 1700000000, body) {
			t.Errorf("key %x does not verify %q", key[:1], header)
		}
	}
	if Verify(newKey, header, "id-1", 1700000001, body) {
		t.Error("a signature verified with another timestamp")
	}
	if Verify(newKey, header, "id-1", 1700000000, []byte(`{}`)) {
		t.Error("a signature verified with another body")
	}
}
