package eventlog

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ErrIdempotencyConflict is returned when an idempotency key comes again
// with a different request.
var ErrIdempotencyConflict = errors.New("eventlog: idempotency key reused with a different request")

// Idempotency makes an append happen once per key within a window.
type Idempotency struct {
	// Key names the request, as chosen by the producer.
	Key string
	// Hash identifies the request's content: the same key with another
	// hash is a conflict, not a repeat.
	Hash [sha256.Size]byte
	// TTL is how long the key is remembered; zero means forever.
	TTL time.Duration
}

// prefixIdempotency keys the remembered idempotency keys. The value is the
// request's hash, the first seq appended and the number of records.
const prefixIdempotency = 'i'

// AppendIdempotent appends entries like Append, once per idempotency key:
// a repeat of the key within its TTL appends nothing and returns the
// records of the first append with replayed true, also when the repeats
// arrive concurrently or after a restart. The key is stored in the same
// transaction as the records, so one never exists without the other.
func (l *Log) AppendIdempotent(ctx context.Context, entries []Entry, idem Idempotency) (records []Record, replayed bool, err error) {
	res, err := l.submit(ctx, entries, &idem)
	if err != nil {
		return nil, false, err
	}
	return res.records, res.replayed, res.err
}

func idempotencyKey(key string) []byte {
	return append([]byte{prefixIdempotency}, key...)
}

func encodeKeyValue(hash [sha256.Size]byte, first uint64, count int) []byte {
	value := append([]byte(nil), hash[:]...)
	value = binary.BigEndian.AppendUint64(value, first)
	return binary.BigEndian.AppendUint32(value, uint32(count))
}

// lookupKey reads a request's idempotency key from the log and, if it is
// there, returns the result for a repeat.
func (l *Log) lookupKey(txn *badger.Txn, req *appendRequest) (appendResult, bool, error) {
	item, err := txn.Get(idempotencyKey(req.idem.Key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return appendResult{}, false, nil
	}
	if err != nil {
		return appendResult{}, false, fmt.Errorf("append: read idempotency key: %w", err)
	}

	value, err := item.ValueCopy(nil)
	if err != nil {
		return appendResult{}, false, fmt.Errorf("append: read idempotency key: %w", err)
	}
	if len(value) != sha256.Size+12 {
		return appendResult{}, false, fmt.Errorf("%w: idempotency key %q", errCorrupt, req.idem.Key)
	}
	if [sha256.Size]byte(value[:sha256.Size]) != req.idem.Hash {
		return appendResult{err: fmt.Errorf("key %q: %w", req.idem.Key, ErrIdempotencyConflict)}, true, nil
	}

	first := binary.BigEndian.Uint64(value[sha256.Size:])
	count := binary.BigEndian.Uint32(value[sha256.Size+8:])
	records := make([]Record, 0, count)
	for seq := first; seq < first+uint64(count); seq++ {
		r, err := getRecord(txn, seq)
		if err != nil {
			return appendResult{}, false, fmt.Errorf("append: read the records of idempotency key %q: %w", req.idem.Key, err)
		}
		records = append(records, r)
	}
	return appendResult{records: records, replayed: true}, true, nil
}

// replayOf returns the result of req, a repeat within one batch of the
// request first that got res.
func replayOf(first *appendRequest, res appendResult, req *appendRequest) appendResult {
	if first.idem.Hash != req.idem.Hash {
		return appendResult{err: fmt.Errorf("key %q: %w", req.idem.Key, ErrIdempotencyConflict)}
	}
	return appendResult{records: res.records, replayed: true}
}
