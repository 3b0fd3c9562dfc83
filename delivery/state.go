package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// statePrefix is the key prefix of the stored worker states, one per webhook.
const statePrefix = "d/"

// State is a webhook's delivery position, stored after every change.
type State struct {
	// Cursor is the seq of the last event finished for this webhook. Seqs
	// start at 1, so 0 means that nothing is finished yet.
	Cursor uint64 `json:"cursor"`
	// PendingSeq is the seq of the event being retried, 0 when none is.
	PendingSeq uint64 `json:"pendingSeq,omitempty"`
	// Attempts counts the failed attempts at PendingSeq.
	Attempts int `json:"attempts,omitempty"`
	// NextAttempt is when PendingSeq is tried again.
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	// LastError describes the last failed attempt.
	LastError string `json:"lastError,omitempty"`
}

func stateKey(webhookID string) []byte {
	return []byte(statePrefix + webhookID)
}

// loadState returns the stored state of a webhook and whether there was one.
func loadState(db *badger.DB, webhookID string) (State, bool, error) {
	var st State
	found := false
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(stateKey(webhookID))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}

		found = true
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &st) })
	})
	if err != nil {
		return State{}, false, fmt.Errorf("load delivery state of webhook %s: %w", webhookID, err)
	}
	return st, found, nil
}

// saveState stores the state durably: the database syncs every commit.
func saveState(db *badger.DB, webhookID string, st State) error {
	value, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save delivery state of webhook %s: %w", webhookID, err)
	}
	err = db.Update(func(txn *badger.Txn) error { return txn.Set(stateKey(webhookID), value) })
	if err != nil {
		return fmt.Errorf("save delivery state of webhook %s: %w", webhookID, err)
	}
	return nil
}

func deleteState(db *badger.DB, webhookID string) error {
	err := db.Update(func(txn *badger.Txn) error { return txn.Delete(stateKey(webhookID)) })
	if err != nil {
		return fmt.Errorf("delete delivery state of webhook %s: %w", webhookID, err)
	}
	return nil
}

// storedStateIDs returns the ids of the webhooks that have a stored state.
func storedStateIDs(db *badger.DB) ([]string, error) {
	var ids []string
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(statePrefix)})
		defer it.Close()

		for it.Rewind(); it.Valid(); it.Next() {
			ids = append(ids, string(it.Item().Key()[len(statePrefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list delivery states: %w", err)
	}
	return ids, nil
}
