package eventlog

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"
)

func idem(key, body string) Idempotency {
	return Idempotency{Key: key, Hash: sha256.Sum256([]byte(body)), TTL: time.Hour}
}

func TestIdempotentRepeatAppendsOnce(t *testing.T) {
	l := openLog(t, Options{})
	entries := []Entry{{Event: "task.created", Data: []byte(`{"n":1}`)}, {Event: "task.updated", Data: []byte(`{"n":2}`)}}

	first, replayed, err := l.AppendIdempotent(context.Background(), entries, idem("k1", "body"))
	if err != nil || replayed {
		t.Fatalf("first append: replayed %v, err %v", replayed, err)
	}
	again, replayed, err := l.AppendIdempotent(context.Background(), entries, idem("k1", "body"))
	if err != nil || !replayed {
		t.Fatalf("repeat: replayed %v, err %v; want a replay", replayed, err)
	}
	if len(again) != 2 || again[0].Seq != first[0].Seq || again[1].ID != first[1].ID || string(again[1].Data) != `{"n":2}` {
		t.Errorf("repeat records = %+v, want the first append's", again)
	}
	if h := l.Head(); h != 2 {
		t.Errorf("head = %d, want 2", h)
	}

	_, _, err = l.AppendIdempotent(context.Background(), entries, idem("k1", "another body"))
	if !errors.Is(err, ErrIdempotencyConflict) {
		t.Errorf("same key, other body: err = %v, want ErrIdempotencyConflict", err)
	}
	if h := l.Head(); h != 2 {
		t.Errorf("head after the conflict = %d, want 2", h)
	}
}

// Concurrent repeats of one key append once, whether they share a group
// commit or not.
func TestIdempotentConcurrentRepeats(t *testing.T) {
	l := openLog(t, Options{})
	entries := []Entry{{Event: "task.created", Data: []byte(`{}`)}}

	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh, seqs := 0, map[uint64]bool{}
	for range 32 {
		wg.Go(func() {
			records, replayed, err := l.AppendIdempotent(context.Background(), entries, idem("same", "body"))
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !replayed {
				fresh++
			}
			seqs[records[0].Seq] = true
		})
	}
	wg.Wait()

	if fresh != 1 || len(seqs) != 1 || l.Head() != 1 {
		t.Errorf("fresh appends %d, distinct seqs %d, head %d; want 1, 1, 1", fresh, len(seqs), l.Head())
	}
}

func TestIdempotentAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	l, err := Open(db, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	entries := []Entry{{Event: "task.created", Data: []byte(`{}`)}}
	first, _, err := l.AppendIdempotent(context.Background(), entries, idem("k", "b"))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	l.Close()
	db.Close()

	db = openDB(t, dir)
	defer db.Close()
	l, err = Open(db, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	again, replayed, err := l.AppendIdempotent(context.Background(), entries, idem("k", "b"))
	if err != nil || !replayed || again[0].ID != first[0].ID || l.Head() != 1 {
		t.Errorf("repeat after restart: replayed %v, err %v, head %d; want the first record", replayed, err, l.Head())
	}
}

func TestEventTooLarge(t *testing.T) {
	l := openLog(t, Options{MaxEventBytes: 10})
	_, err := l.Append(context.Background(), []Entry{{Event: "task.created", Data: []byte(`"more than ten bytes"`)}})
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v, want ErrEventTooLarge", err)
	}
	if h := l.Head(); h != 0 {
		t.Errorf("head = %d, want 0", h)
	}
}
