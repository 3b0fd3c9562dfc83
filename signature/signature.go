// Package signature signs webhook deliveries as Standard Webhooks defines
// it: an HMAC-SHA256 over "id.timestamp.body" with a shared secret, sent as
// "v1,<base64 signature>" in the webhook-signature header.
package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SecretPrefix starts every secret, as Standard Webhooks secrets do.
const SecretPrefix = "whsec_"

// Key sizes of a secret, in bytes after base64 decoding. Standard Webhooks
// asks for 24 to 64 bytes; hooklog generates 32.
const (
	MinKeyBytes      = 24
	MaxKeyBytes      = 64
	generatedKeySize = 32
)

// ErrInvalidSecret is returned, wrapped, for a secret that is not
// "whsec_" followed by the base64 of 24 to 64 bytes.
var ErrInvalidSecret = errors.New("invalid webhook secret")

// NewSecret returns a new random secret.
func NewSecret() (string, error) {
	key := make([]byte, generatedKeySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// ParseSecret returns the key of a secret.
func ParseSecret(secret string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: it must start with %q", ErrInvalidSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: the part after %q is not standard base64", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < MinKeyBytes || len(key) > MaxKeyBytes {
		return nil, fmt.Errorf("%w: it decodes to %d bytes, not %d to %d", ErrInvalidSecret, len(key), MinKeyBytes, MaxKeyBytes)
	}
	return key, nil
}

// Sign returns the signature of one message: "v1," and the base64 of the
// HMAC-SHA256 of "id.timestamp.body" under key.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Header returns the webhook-signature header for keys: one signature per
// key, separated by spaces, so receivers holding any of the keys can verify
// during a rotation.
func Header(keys [][]byte, id string, timestamp int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, key := range keys {
		sigs[i] = Sign(key, id, timestamp, body)
	}
	return strings.Join(sigs, " ")
}

// Verify reports whether header holds a v1 signature of the message under
// key. It compares in constant time.
func Verify(key []byte, header, id string, timestamp int64, body []byte) bool {
	want := []byte(Sign(key, id, timestamp, body))
	ok := false
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), want) {
			ok = true
		}
	}
	return ok
}
