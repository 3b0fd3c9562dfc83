package projections

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/hooklog/hooklog/signature"
)

// credentialsPrefix keys each webhook's Credentials in the database.
const credentialsPrefix = "s/"

// Credentials are a webhook's signing secrets and custom header values.
// They are kept beside the log, not in it, because webhook.* events are
// delivered to subscribers and must not carry them.
type Credentials struct {
	// Secrets sign deliveries: the current one first, then any previous one
	// still valid during a rotation.
	Secrets []Secret `json:"secrets"`
	// Headers are the custom request headers with their values.
	Headers map[string]string `json:"headers,omitempty"`
}

// Secret is one signing secret.
type Secret struct {
	Value string `json:"value"`
	// ExpiresAt ends a previous secret's overlap; zero for the current one.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// Current returns the current secret.
func (c Credentials) Current() string {
	if len(c.Secrets) == 0 {
		return ""
	}
	return c.Secrets[0].Value
}

// Keys returns the keys of the secrets valid at now, current first.
func (c Credentials) Keys(now time.Time) [][]byte {
	var keys [][]byte
	for _, s := range c.Secrets {
		if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			continue
		}
		key, err := signature.ParseSecret(s.Value)
		if err != nil {
			continue // validated when stored
		}
		keys = append(keys, key)
	}
	return keys
}

// clone returns a deep copy, so callers cannot change the cached one.
func (c Credentials) clone() Credentials {
	out := Credentials{Secrets: append([]Secret(nil), c.Secrets...)}
	if c.Headers != nil {
		out.Headers = make(map[string]string, len(c.Headers))
		for k, v := range c.Headers {
			out.Headers[k] = v
		}
	}
	return out
}

func credentialsKey(id string) []byte {
	return []byte(credentialsPrefix + id)
}

func saveCredentials(db *badger.DB, id string, c Credentials) error {
	value, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("save credentials of webhook %s: %w", id, err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set(credentialsKey(id), value) }); err != nil {
		return fmt.Errorf("save credentials of webhook %s: %w", id, err)
	}
	return nil
}

func deleteCredentials(db *badger.DB, id string) error {
	if err := db.Update(func(txn *badger.Txn) error { return txn.Delete(credentialsKey(id)) }); err != nil {
		return fmt.Errorf("delete credentials of webhook %s: %w", id, err)
	}
	return nil
}

// loadAllCredentials reads every stored Credentials by webhook id.
func loadAllCredentials(db *badger.DB) (map[string]Credentials, error) {
	all := make(map[string]Credentials)
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(credentialsPrefix)})
		defer it.Close()

		for it.Rewind(); it.Valid(); it.Next() {
			id := string(it.Item().Key()[len(credentialsPrefix):])
			var c Credentials
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &c) }); err != nil {
				return fmt.Errorf("webhook %s: %w", id, err)
			}
			all[id] = c
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load webhook credentials: %w", err)
	}
	return all, nil
}
