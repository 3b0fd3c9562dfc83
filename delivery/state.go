package delivery

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
)

// Key prefixes of delivery's data in the shared database:
//
//	d/ID             the State of webhook ID
//	k/ID/SEQ         a Parked event of webhook ID (SEQ big endian)
//	a/TIME UUID      an AttemptRecord (TIME: big-endian Unix nanoseconds)
//	w/ID/TIME UUID   an empty index entry of webhook ID's attempts
const (
	statePrefix        = "d/"
	parkedPrefix       = "k/"
	attemptPrefix      = "a/"
	attemptIndexPrefix = "w/"
)

// State is a webhook's delivery position, stored after every attempt.
type State struct {
	// Cursor is the seq of the last event finished for this webhook:
	// delivered or parked. Seqs start at 1, so 0 means nothing is finished.
	Cursor uint64 `json:"cursor"`
	// PendingSeq is the seq of the event being retried, 0 when none is.
	PendingSeq uint64 `json:"pendingSeq,omitempty"`
	// Attempts counts the failed attempts at PendingSeq.
	Attempts int `json:"attempts,omitempty"`
	// FirstAttempt is when PendingSeq was first tried.
	FirstAttempt time.Time `json:"firstAttempt,omitzero"`
	// NextAttempt is when PendingSeq is tried again.
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	// LastStatus is the status of the last failed attempt, 0 if it got none.
	LastStatus int `json:"lastStatus,omitempty"`
	// LastError describes the last failed attempt.
	LastError string `json:"lastError,omitempty"`
	// ReplayUntil marks a replay: events up to this seq had been finished
	// before, so their attempts carry the replay trigger.
	ReplayUntil uint64 `json:"replayUntil,omitempty"`
	// ParkedReplay is set while the parked events are being replayed, one
	// attempt each in seq order; ParkedReplayAfter is the last one tried.
	ParkedReplay      bool   `json:"parkedReplay,omitempty"`
	ParkedReplayAfter uint64 `json:"parkedReplayAfter,omitempty"`
}

// finish returns the state after seq is delivered or parked: the cursor at
// seq and no retry pending. A replay or a parked replay in progress stays.
func (st State) finish(seq uint64) State {
	next := State{Cursor: seq, ParkedReplay: st.ParkedReplay, ParkedReplayAfter: st.ParkedReplayAfter}
	if st.ReplayUntil > seq {
		next.ReplayUntil = st.ReplayUntil
	}
	return next
}

// startPending returns the state before the first attempt at seq.
func (st State) startPending(seq uint64) State {
	next := st.finish(st.Cursor)
	next.PendingSeq = seq
	return next
}

// Parked is an event that a webhook gave up on: the dead-letter record.
type Parked struct {
	WebhookID      string    `json:"webhookId"`
	Seq            uint64    `json:"seq"`
	EventID        string    `json:"eventId"`
	Event          string    `json:"event"`
	Reason         string    `json:"reason"`
	Attempts       int       `json:"attempts"`
	LastStatus     int       `json:"lastStatus,omitempty"`
	LastError      string    `json:"lastError,omitempty"`
	FirstAttemptAt time.Time `json:"firstAttemptAt"`
	LastAttemptAt  time.Time `json:"lastAttemptAt"`
	ParkedAt       time.Time `json:"parkedAt"`
}

// Triggers of an attempt.
const (
	TriggerScheduled = "scheduled" // delivery in log order, first try or retry
	TriggerManual    = "manual"    // an operator asked for one event again
	TriggerReplay    = "replay"    // an operator replayed parked events
)

// AttemptRecord is one entry of the attempt log. Its first fields are those
// of FFmate's webhook execution (uuid, event, url, request, response,
// createdAt, updatedAt); the rest are hooklog's.
type AttemptRecord struct {
	UUID      string           `json:"uuid"`
	Event     string           `json:"event"`
	URL       string           `json:"url"`
	Request   AttemptRequest   `json:"request"`
	Response  *AttemptResponse `json:"response"`
	CreatedAt time.Time        `json:"createdAt"`
	UpdatedAt time.Time        `json:"updatedAt"`

	WebhookID  string  `json:"webhookId"`
	Seq        uint64  `json:"seq"`
	EventID    string  `json:"eventId"`
	Attempt    int     `json:"attempt"`
	Trigger    string  `json:"trigger"`
	Delivered  bool    `json:"delivered"`
	ErrorClass string  `json:"errorClass,omitempty"`
	Error      string  `json:"error,omitempty"`
	DurationMs float64 `json:"durationMs"`
}

// AttemptRequest is the request of an attempt. Its body is rebuilt from the
// log when the attempt is listed; bodies longer than maxResponseBody are cut
// there, and the whole event stays in the log.
type AttemptRequest struct {
	Headers       http.Header `json:"headers"`
	Body          string      `json:"body"`
	BodyTruncated bool        `json:"bodyTruncated,omitempty"`
}

// AttemptResponse is the response of an attempt, with its body capped.
type AttemptResponse struct {
	Status        int         `json:"status"`
	Headers       http.Header `json:"headers"`
	Body          string      `json:"body"`
	BodyTruncated bool        `json:"bodyTruncated,omitempty"`
}

func stateKey(webhookID string) []byte {
	return []byte(statePrefix + webhookID)
}

func parkedKey(webhookID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(parkedPrefix+webhookID+"/"), seq)
}

// attemptKeys returns the key of an attempt record and of its index entry.
// Keys sort by the attempt's start time, so a reverse scan is newest first.
func attemptKeys(webhookID string, start time.Time, id uuid.UUID) ([]byte, []byte) {
	suffix := binary.BigEndian.AppendUint64(nil, uint64(start.UnixNano()))
	suffix = append(suffix, id[:]...)
	return append([]byte(attemptPrefix), suffix...), append([]byte(attemptIndexPrefix+webhookID+"/"), suffix...)
}

// store keeps delivery's data in the delivery database.
type store struct {
	db        *badger.DB
	retention time.Duration // of attempt records
	// spaceCheck, when set, is asked before each commit whether the disk
	// has room for it.
	spaceCheck func(need int) error
}

// loadState returns the stored state of a webhook and whether there was one.
func (s *store) loadState(webhookID string) (State, bool, error) {
	var st State
	found := false
	err := s.db.View(func(txn *badger.Txn) error {
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

// change is what one commit stores for a webhook. Nil fields are left as
// they are.
type change struct {
	state   *State
	attempt *AttemptRecord
	park    *Parked // stored or replaced
	unpark  uint64  // seq of a parked record to delete, 0 for none
}

// commit stores a change in one transaction, so one sync.
func (s *store) commit(webhookID string, c change) error {
	if s.spaceCheck != nil {
		if err := s.spaceCheck(4096); err != nil {
			return fmt.Errorf("store delivery state of webhook %s: %w", webhookID, err)
		}
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		if c.state != nil {
			if err := setJSON(txn, stateKey(webhookID), c.state, 0); err != nil {
				return err
			}
		}

		if attempt := c.attempt; attempt != nil {
			id, err := uuid.Parse(attempt.UUID)
			if err != nil {
				return err
			}
			key, indexKey := attemptKeys(webhookID, attempt.CreatedAt, id)
			if err := setJSON(txn, key, attempt, s.retention); err != nil {
				return err
			}
			if err := txn.SetEntry(badger.NewEntry(indexKey, nil).WithTTL(s.retention)); err != nil {
				return err
			}
		}

		if c.park != nil {
			if err := setJSON(txn, parkedKey(webhookID, c.park.Seq), c.park, 0); err != nil {
				return err
			}
		}
		if c.unpark != 0 {
			return txn.Delete(parkedKey(webhookID, c.unpark))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store delivery state of webhook %s: %w", webhookID, err)
	}
	return nil
}

func setJSON(txn *badger.Txn, key []byte, v any, ttl time.Duration) error {
	value, err := json.Marshal(v)
	if err != nil {
		return err
	}
	entry := badger.NewEntry(key, value)
	if ttl > 0 {
		entry = entry.WithTTL(ttl)
	}
	return txn.SetEntry(entry)
}

// valueLogDiscardRatio is the share of a value log file that must be
// garbage before collection rewrites the file's live entries to a new one.
const valueLogDiscardRatio = 0.5

// collectValueLog rewrites the value log files that are mostly garbage, one
// at a time, until none is left or stop is closed, and returns how many it
// rewrote. Badger learns what is garbage as compactions drop expired and
// overwritten entries.
func (s *store) collectValueLog(stop <-chan struct{}) (int, error) {
	rewritten := 0
	for {
		select {
		case <-stop:
			return rewritten, nil
		default:
		}
		err := s.db.RunValueLogGC(valueLogDiscardRatio)
		switch {
		case err == nil:
			rewritten++
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			return rewritten, nil
		default:
			return rewritten, fmt.Errorf("value log garbage collection: %w", err)
		}
	}
}

// forget deletes a webhook's state and parked events. Its attempt records
// stay until they expire.
func (s *store) forget(webhookID string) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()

	if err := wb.Delete(stateKey(webhookID)); err != nil {
		return fmt.Errorf("forget webhook %s: %w", webhookID, err)
	}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(parkedPrefix + webhookID + "/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return fmt.Errorf("forget webhook %s: %w", webhookID, err)
	}
	return nil
}

// stateIDs returns the ids of the webhooks that have a stored state.
func (s *store) stateIDs() ([]string, error) {
	var ids []string
	err := s.db.View(func(txn *badger.Txn) error {
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

// parked returns one page of a webhook's parked events in seq order, and
// their total count.
func (s *store) parked(webhookID string, page, perPage int) ([]Parked, int, error) {
	list := []Parked{}
	total := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(parkedPrefix + webhookID + "/"), PrefetchValues: false})
		defer it.Close()

		first := page * perPage
		for it.Rewind(); it.Valid(); it.Next() {
			total++
			if total <= first || len(list) >= perPage {
				continue
			}

			var p Parked
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &p) }); err != nil {
				return err
			}
			list = append(list, p)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list parked events of webhook %s: %w", webhookID, err)
	}
	return list, total, nil
}

// nextParked returns the parked event of a webhook with the lowest seq above
// after, and whether there is one.
func (s *store) nextParked(webhookID string, after uint64) (Parked, bool, error) {
	var p Parked
	found := false
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(parkedPrefix + webhookID + "/")})
		defer it.Close()

		it.Seek(parkedKey(webhookID, after+1))
		if !it.Valid() {
			return nil
		}
		found = true
		return it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &p) })
	})
	if err != nil {
		return Parked{}, false, fmt.Errorf("read parked events of webhook %s: %w", webhookID, err)
	}
	return p, found, nil
}

// countParked returns the number of a webhook's parked events.
func (s *store) countParked(webhookID string) (int, error) {
	_, total, err := s.parked(webhookID, 0, 0)
	return total, err
}

// dropParked deletes one parked event of a webhook, or all when seq is 0,
// and returns how many it deleted.
func (s *store) dropParked(webhookID string, seq uint64) (int, error) {
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(parkedPrefix + webhookID + "/"), PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().KeyCopy(nil)
			if seq == 0 || binary.BigEndian.Uint64(key[len(key)-8:]) == seq {
				keys = append(keys, key)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("drop parked events of webhook %s: %w", webhookID, err)
	}

	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, key := range keys {
		if err := wb.Delete(key); err != nil {
			return 0, fmt.Errorf("drop parked events of webhook %s: %w", webhookID, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, fmt.Errorf("drop parked events of webhook %s: %w", webhookID, err)
	}
	return len(keys), nil
}

// attempts returns one page of attempt records, newest first, and their
// total count: of one webhook, or of all when webhookID is empty.
//
// NOTE: the total is counted by a key-only scan on every call, so a list
// costs time in proportion to the records kept within the retention period.
func (s *store) attempts(webhookID string, page, perPage int) ([]AttemptRecord, int, error) {
	prefix := []byte(attemptPrefix)
	if webhookID != "" {
		prefix = []byte(attemptIndexPrefix + webhookID + "/")
	}

	list := []AttemptRecord{}
	total := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: false})
		defer it.Close()

		first := page * perPage
		seekKey := append(append([]byte(nil), prefix...), 0xff)
		for it.Seek(seekKey); it.Valid(); it.Next() {
			total++
			if total <= first || len(list) >= perPage {
				continue
			}

			var rec AttemptRecord
			var err error
			if webhookID == "" {
				err = it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) })
			} else {
				key := append([]byte(attemptPrefix), it.Item().Key()[len(prefix):]...)
				rec, err = getAttempt(txn, key)
			}
			if errors.Is(err, badger.ErrKeyNotFound) {
				// The record expired after its index entry was read.
				total--
				continue
			}
			if err != nil {
				return err
			}
			list = append(list, rec)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list attempts: %w", err)
	}
	return list, total, nil
}

func getAttempt(txn *badger.Txn, key []byte) (AttemptRecord, error) {
	item, err := txn.Get(key)
	if err != nil {
		return AttemptRecord{}, err
	}
	var rec AttemptRecord
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) })
	return rec, err
}
