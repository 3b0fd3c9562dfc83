// Package eventlog is hooklog's append-only event log on Badger.
//
// A single writer goroutine assigns sequence numbers at commit: they start at
// 1, have no gaps, and become visible in order, so a reader never sees seq N+1
// before N. Concurrent appends are group-committed in one Badger transaction,
// which the database syncs before Append returns (the database must be opened
// with SyncWrites).
package eventlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by the log.
var (
	// ErrNotFound is returned for a sequence number outside the log.
	ErrNotFound = errors.New("eventlog: record not found")
	// ErrClosed is returned once Close has been called.
	ErrClosed = errors.New("eventlog: log closed")
	// ErrBatchTooLarge is returned by Append for a batch that does not fit in
	// one group commit.
	ErrBatchTooLarge = errors.New("eventlog: batch too large")
	// ErrEventTooLarge is returned by Append for an event whose data is
	// above Options.MaxEventBytes. Events are never truncated.
	ErrEventTooLarge = errors.New("eventlog: event too large")
)

// SizeError is returned by Append for an event or a batch over a limit.
// It wraps ErrEventTooLarge or ErrBatchTooLarge.
type SizeError struct {
	Limit  error  // ErrEventTooLarge or ErrBatchTooLarge
	Detail string // the size over the limit and the limit, such as `event "task.created" of 2000 bytes (limit 1000)`
}

func (e *SizeError) Error() string {
	if e.Limit == nil {
		return "append " + e.Detail
	}
	return "append " + e.Detail + ": " + e.Limit.Error()
}

func (e *SizeError) Unwrap() error {
	return e.Limit
}

// Defaults for Options.
const (
	DefaultMaxBatchBytes  = 8 << 20
	DefaultMaxBatchEvents = 10000
	maxEventNameLen       = 255
)

// Key prefixes. Records live under 'e' + big-endian seq; the index of event
// names under 'n' + name + 0x00 + big-endian seq, written in the same
// transaction as the record it points to. An index entry's value is the
// number of records with that name up to and including its seq (big-endian
// uint64), so counting the records of a name in a range takes two seeks.
const (
	prefixEvent = 'e'
	prefixIndex = 'n'
)

// Options configures a Log. The zero value is usable.
type Options struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxBatchBytes caps the size of one group commit as Badger counts it
	// against its transaction limit (15% of the memtable size); zero means
	// DefaultMaxBatchBytes.
	MaxBatchBytes int
	// SpaceCheck, when set, is asked before each group commit whether the
	// disk has room for it; an error fails the commit's appends.
	SpaceCheck func(need int) error
	// ValueThreshold is the database's value threshold: values of this size
	// and more go to Badger's value log and count as a pointer against the
	// transaction limit. Zero means Badger's default, 1 MiB.
	ValueThreshold int
	// MaxBatchEvents caps the events in one group commit; zero means
	// DefaultMaxBatchEvents.
	MaxBatchEvents int
	// MaxEventBytes caps one event's data; zero means no cap below
	// MaxBatchBytes.
	MaxEventBytes int
	// Registerer receives the log's metrics; nil exports none.
	Registerer prometheus.Registerer
	// KnownEvents are the event names whose counters start at zero, so they
	// are exported before the first event of each name.
	KnownEvents []string
}

// Log is the event log. Its methods are safe for concurrent use.
type Log struct {
	db   *badger.DB
	opts Options

	requests chan *appendRequest // unbuffered: every received request gets a result
	stop     chan struct{}       // closed by Close
	done     chan struct{}       // closed when the writer has returned
	stopOnce sync.Once

	mu          sync.Mutex // guards head, notify and eventNotify
	head        uint64     // last visible seq; 0 when the log is empty
	notify      chan struct{}
	eventNotify map[string]chan struct{} // by event name, made on request
	spaceCheck  func(need int) error

	// Owned by the writer goroutine.
	lastTimestamp time.Time
	counts        map[string]uint64 // records per event name up to the head

	commits atomic.Uint64 // successful group commits
	metrics *logMetrics
}

type appendRequest struct {
	entries []Entry
	idem    *Idempotency // nil for a plain append
	size    int
	arrived time.Time
	result  chan appendResult // buffered, capacity 1
}

type appendResult struct {
	records  []Record
	replayed bool // the records come from an earlier append with the same key
	err      error
}

// Open recovers the head of the log stored in db and starts its writer. The
// caller keeps ownership of db and must call Close before closing db.
func Open(db *badger.DB, opts Options) (*Log, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.MaxBatchEvents <= 0 {
		opts.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if opts.ValueThreshold <= 0 {
		opts.ValueThreshold = 1 << 20
	}

	l := &Log{
		db:       db,
		opts:     opts,
		requests: make(chan *appendRequest),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		notify:   make(chan struct{}),

		eventNotify: make(map[string]chan struct{}),
		spaceCheck:  opts.SpaceCheck,
	}

	last, err := l.recoverHead()
	if err != nil {
		return nil, err
	}
	l.head = last.Seq
	l.lastTimestamp = last.Timestamp

	if l.counts, err = l.recoverCounts(); err != nil {
		return nil, err
	}
	l.metrics = newLogMetrics(l, opts.Registerer, opts.KnownEvents)

	go l.writer()
	return l, nil
}

// recoverHead returns the last record in the log, or a zero Record when the
// log is empty.
func (l *Log) recoverHead() (Record, error) {
	var last Record
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte{prefixEvent}})
		defer it.Close()

		it.Seek(eventKey(^uint64(0)))
		if !it.Valid() {
			return nil
		}

		item := it.Item()
		value, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		last, err = decodeRecord(binary.BigEndian.Uint64(item.Key()[1:]), value)
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("recover log head: %w", err)
	}
	return last, nil
}

// recoverCounts reads the number of records of each event name from the
// last index entry of each name: one seek per name.
func (l *Log) recoverCounts() (map[string]uint64, error) {
	counts := make(map[string]uint64)
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixIndex}})
		defer it.Close()

		for it.Seek([]byte{prefixIndex}); it.Valid(); {
			key := it.Item().Key()
			name := string(key[1 : len(key)-9])

			count, err := rank(txn, name, ^uint64(0))
			if err != nil {
				return err
			}
			counts[name] = count

			// Jump past this name: 0x01 sorts after the 0x00 separator.
			it.Seek(append(append([]byte{prefixIndex}, name...), 1))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recover event counts: %w", err)
	}
	return counts, nil
}

// rank returns the number of records named name with seq <= through.
func rank(txn *badger.Txn, name string, through uint64) (uint64, error) {
	prefix := append(append([]byte{prefixIndex}, name...), 0)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
	defer it.Close()

	it.Seek(indexKey(name, through))
	if !it.Valid() {
		return 0, nil
	}

	var count uint64
	err := it.Item().Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("%w: index entry of %q has %d bytes", errCorrupt, name, len(v))
		}
		count = binary.BigEndian.Uint64(v)
		return nil
	})
	return count, err
}

// Count returns the number of records named one of events with
// after < seq <= through; a through above the head means the head.
func (l *Log) Count(events []string, after, through uint64) (uint64, error) {
	through = min(through, l.Head())
	if after >= through {
		return 0, nil
	}

	var total uint64
	err := l.db.View(func(txn *badger.Txn) error {
		for _, name := range events {
			upper, err := rank(txn, name, through)
			if err != nil {
				return err
			}
			lower, err := rank(txn, name, after)
			if err != nil {
				return err
			}
			total += upper - lower
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count events after seq %d: %w", after, err)
	}
	return total, nil
}

// Close stops the writer after the batch it is committing. Appends that have
// not reached the writer fail with ErrClosed. Close is safe to call twice.
func (l *Log) Close() error {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

// Head returns the sequence number of the last visible record, 0 for an
// empty log.
func (l *Log) Head() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head
}

// HeadChanged returns the head and a channel that is closed once the head
// moves past it, for callers that wait on several channels at once.
func (l *Log) HeadChanged() (uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head, l.notify
}

// EventAppended returns the head and a channel that is closed once a record
// named event is appended after it. Waiting on it instead of HeadChanged
// spares a reader of one event name the wake-ups of all the others.
func (l *Log) EventAppended(event string) (uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()

	ch, ok := l.eventNotify[event]
	if !ok {
		ch = make(chan struct{})
		l.eventNotify[event] = ch
	}
	return l.head, ch
}

// Wait blocks until the head is greater than after and returns the new head.
// It returns early with ctx.Err() or ErrClosed.
func (l *Log) Wait(ctx context.Context, after uint64) (uint64, error) {
	for {
		head, notify := l.HeadChanged()

		if head > after {
			return head, nil
		}

		select {
		case <-notify:
		case <-ctx.Done():
			return head, ctx.Err()
		case <-l.stop:
			return head, ErrClosed
		}
	}
}

// Append appends entries atomically with consecutive sequence numbers and
// returns their records once the batch holding them is durable. Either all
// entries are appended or none is. The entries' Data must not be modified
// until Append returns.
func (l *Log) Append(ctx context.Context, entries []Entry) ([]Record, error) {
	res, err := l.submit(ctx, entries, nil)
	if err != nil {
		return nil, err
	}
	return res.records, res.err
}

// submit checks entries, hands them to the writer and waits for its result.
func (l *Log) submit(ctx context.Context, entries []Entry, idem *Idempotency) (appendResult, error) {
	if len(entries) == 0 {
		return appendResult{}, nil
	}

	size := 0
	for _, e := range entries {
		if e.Event == "" || len(e.Event) > maxEventNameLen {
			return appendResult{}, fmt.Errorf("append event %q: name must have 1 to %d bytes", e.Event, maxEventNameLen)
		}
		if l.opts.MaxEventBytes > 0 && len(e.Data) > l.opts.MaxEventBytes {
			return appendResult{}, &SizeError{Limit: ErrEventTooLarge,
				Detail: fmt.Sprintf("event %q of %d bytes (limit %d)", e.Event, len(e.Data), l.opts.MaxEventBytes)}
		}
		size += l.entrySize(e)
	}
	if size > l.opts.MaxBatchBytes || len(entries) > l.opts.MaxBatchEvents {
		return appendResult{}, &SizeError{Limit: ErrBatchTooLarge,
			Detail: fmt.Sprintf("%d events of %d bytes (limits: %d events, %d bytes)", len(entries), size, l.opts.MaxBatchEvents, l.opts.MaxBatchBytes)}
	}

	req := &appendRequest{entries: entries, idem: idem, size: size, arrived: time.Now(), result: make(chan appendResult, 1)}
	select {
	case l.requests <- req:
	case <-l.stop:
		return appendResult{}, ErrClosed
	case <-ctx.Done():
		return appendResult{}, ctx.Err()
	}

	// The writer sends a result for every request it received, so this wait
	// is bounded by one commit. Not selecting on ctx here keeps the result
	// truthful: an error never hides an event that was appended.
	return <-req.result, nil
}

// entrySize estimates what an entry counts against Badger's transaction
// limit: the record's key and value, or a value pointer for a value in the
// value log, plus the index entry.
func (l *Log) entrySize(e Entry) int {
	const overhead, valuePointer = 32, 24
	value := headerSize + len(e.Event) + len(e.Data)
	if value >= l.opts.ValueThreshold {
		value = valuePointer
	}
	return overhead + 9 + value + 1 + len(e.Event) + 1 + 8 + 8
}

// writer is the only goroutine that writes records. It gathers the requests
// that are waiting into one transaction, up to the batch limits.
func (l *Log) writer() {
	defer close(l.done)

	var carry *appendRequest
	for {
		var batch []*appendRequest
		if carry != nil {
			batch, carry = append(batch, carry), nil
		} else {
			select {
			case req := <-l.requests:
				batch = append(batch, req)
			case <-l.stop:
				return
			}
		}

		size, count := batch[0].size, len(batch[0].entries)
	gather:
		for {
			select {
			case req := <-l.requests:
				if size+req.size > l.opts.MaxBatchBytes || count+len(req.entries) > l.opts.MaxBatchEvents {
					carry = req
					break gather
				}
				batch = append(batch, req)
				size += req.size
				count += len(req.entries)
			default:
				break gather
			}
		}

		l.commit(batch)
	}
}

// commit writes one group of requests in a single transaction and answers
// each of them. The head moves only after a successful commit, so a failed
// commit leaves no gap.
func (l *Log) commit(batch []*appendRequest) {
	now := l.opts.Now().UTC()
	if now.Before(l.lastTimestamp) {
		now = l.lastTimestamp
	}

	l.mu.Lock()
	seq := l.head
	l.mu.Unlock()

	began := time.Now()
	var results []appendResult
	var appended int
	var err error
	l.mu.Lock()
	check := l.spaceCheck
	l.mu.Unlock()
	if check != nil {
		err = check(batchBytes(batch))
	}
	if err == nil {
		results, appended, err = l.write(batch, seq, now)
	}
	if err != nil {
		l.metrics.appendFailures.Add(float64(len(batch)))
		for _, req := range batch {
			req.result <- appendResult{err: err}
		}
		return
	}
	l.metrics.commitDuration.Observe(time.Since(began).Seconds())

	l.lastTimestamp = now
	l.commits.Add(1)
	if appended > 0 {
		l.mu.Lock()
		l.head = seq + uint64(appended)
		close(l.notify)
		l.notify = make(chan struct{})
		for i, req := range batch {
			if results[i].replayed || results[i].err != nil {
				continue
			}
			for _, e := range req.entries {
				if ch, ok := l.eventNotify[e.Event]; ok {
					close(ch)
					delete(l.eventNotify, e.Event)
				}
			}
		}
		l.mu.Unlock()
	}

	l.metrics.batches.Inc()
	l.metrics.batchSize.Observe(float64(appended))
	for i, req := range batch {
		if !results[i].replayed {
			for _, r := range results[i].records {
				l.metrics.appended.WithLabelValues(r.Event).Inc()
			}
		}
		l.metrics.appendDuration.Observe(time.Since(req.arrived).Seconds())
		req.result <- results[i]
	}
}

// write writes the batch in one transaction and returns each request's
// result and the number of records appended. A request whose idempotency
// key is already in the log, or earlier in the batch, appends nothing and
// gets the records of the first request with that key.
func (l *Log) write(batch []*appendRequest, seq uint64, now time.Time) ([]appendResult, int, error) {
	txn := l.db.NewTransaction(true)
	defer txn.Discard()

	counts := make(map[string]uint64) // the new counts of the names in this batch
	keys := make(map[string]int)      // idempotency key to the index of its request in batch
	results := make([]appendResult, len(batch))
	appended := 0
	for i, req := range batch {
		if req.idem != nil {
			if first, ok := keys[req.idem.Key]; ok {
				results[i] = replayOf(batch[first], results[first], req)
				continue
			}
			res, found, err := l.lookupKey(txn, req)
			if err != nil {
				return nil, 0, err
			}
			if found {
				results[i] = res
				continue
			}
			keys[req.idem.Key] = i
		}

		records := make([]Record, len(req.entries))
		for j, e := range req.entries {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, 0, fmt.Errorf("append: generate event id: %w", err)
			}

			seq++
			appended++
			records[j] = Record{Seq: seq, ID: id, Event: e.Event, Timestamp: now, Source: e.Source, Data: e.Data}
			if err := txn.Set(eventKey(seq), encodeRecord(records[j])); err != nil {
				return nil, 0, fmt.Errorf("append seq %d: %w", seq, err)
			}
			count, ok := counts[e.Event]
			if !ok {
				count = l.counts[e.Event]
			}
			count++
			counts[e.Event] = count
			if err := txn.Set(indexKey(e.Event, seq), binary.BigEndian.AppendUint64(nil, count)); err != nil {
				return nil, 0, fmt.Errorf("append seq %d: %w", seq, err)
			}
		}
		results[i] = appendResult{records: records}

		if req.idem != nil {
			entry := badger.NewEntry(idempotencyKey(req.idem.Key), encodeKeyValue(req.idem.Hash, records[0].Seq, len(records)))
			if req.idem.TTL > 0 {
				entry = entry.WithTTL(req.idem.TTL)
			}
			if err := txn.SetEntry(entry); err != nil {
				return nil, 0, fmt.Errorf("append: store idempotency key: %w", err)
			}
		}
	}

	if err := txn.Commit(); err != nil {
		return nil, 0, fmt.Errorf("append: commit: %w", err)
	}
	for name, count := range counts {
		l.counts[name] = count
	}
	return results, appended, nil
}

// SetSpaceCheck replaces the space check that Options.SpaceCheck set.
func (l *Log) SetSpaceCheck(check func(need int) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spaceCheck = check
}

// batchBytes returns the bytes of data in a batch.
func batchBytes(batch []*appendRequest) int {
	n := 0
	for _, req := range batch {
		for _, e := range req.entries {
			n += len(e.Data) + headerSize + len(e.Event)
		}
	}
	return n
}

func countEntries(batch []*appendRequest) int {
	n := 0
	for _, req := range batch {
		n += len(req.entries)
	}
	return n
}

// Query selects records for Read.
type Query struct {
	// After is exclusive: records with seq > After are returned.
	After uint64
	// Through is inclusive; zero, or a value above the head, means the head.
	Through uint64
	// Limit caps the number of records; it must be positive.
	Limit int
	// MaxBytes, when positive, stops the read once the records' data adds
	// up to this many bytes. The first record is returned whatever its size.
	MaxBytes int
	// Events keeps only records with one of these names; empty keeps all.
	Events []string
}

// Read returns the records selected by q in sequence order. The returned
// records are owned by the caller.
func (l *Log) Read(q Query) ([]Record, error) {
	head := l.Head()
	if q.Through == 0 || q.Through > head {
		q.Through = head
	}
	if q.Limit <= 0 || q.After >= q.Through {
		return nil, nil
	}

	var records []Record
	err := l.db.View(func(txn *badger.Txn) error {
		if len(q.Events) == 0 {
			var err error
			records, err = readRange(txn, q)
			return err
		}

		seqs := indexedSeqs(txn, q)
		if len(seqs) == 0 {
			return nil
		}
		var err error
		if span := seqs[len(seqs)-1] - seqs[0] + 1; span <= 2*uint64(len(seqs)) {
			records, err = scanSeqs(txn, seqs, q.MaxBytes)
		} else {
			records, err = getSeqs(txn, seqs, q.MaxBytes)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read after seq %d: %w", q.After, err)
	}
	return records, nil
}

func readRange(txn *badger.Txn, q Query) ([]Record, error) {
	it := txn.NewIterator(badger.IteratorOptions{
		PrefetchValues: true,
		PrefetchSize:   min(q.Limit, 100),
		Prefix:         []byte{prefixEvent},
	})
	defer it.Close()

	var records []Record
	size := 0
	for it.Seek(eventKey(q.After + 1)); it.Valid() && len(records) < q.Limit; it.Next() {
		if q.MaxBytes > 0 && size >= q.MaxBytes {
			break
		}
		item := it.Item()
		seq := binary.BigEndian.Uint64(item.Key()[1:])
		if seq > q.Through {
			break
		}

		r, err := itemRecord(item, seq)
		if err != nil {
			return nil, err
		}
		records = append(records, r)
		size += len(r.Data)
	}
	return records, nil
}

// scanSeqs returns the records of seqs, which are in order and dense, with
// one iterator over their range: one seek into each level of the LSM tree
// instead of one per record, as getSeqs does. It stops once the data
// reaches maxBytes, after at least one record.
func scanSeqs(txn *badger.Txn, seqs []uint64, maxBytes int) ([]Record, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixEvent}})
	defer it.Close()

	records := make([]Record, 0, len(seqs))
	size := 0
	for it.Seek(eventKey(seqs[0])); it.Valid() && len(seqs) > 0; it.Next() {
		if maxBytes > 0 && size >= maxBytes {
			break
		}
		item := it.Item()
		seq := binary.BigEndian.Uint64(item.Key()[1:])
		if seq < seqs[0] {
			continue // a record of another name
		}
		if seq > seqs[0] {
			break // seqs[0] is missing from the log
		}
		seqs = seqs[1:]

		r, err := itemRecord(item, seq)
		if err != nil {
			return nil, err
		}
		records = append(records, r)
		size += len(r.Data)
	}
	if len(seqs) > 0 && (maxBytes <= 0 || size < maxBytes) {
		return nil, fmt.Errorf("record seq %d is in the index but not in the log: %w", seqs[0], ErrNotFound)
	}
	return records, nil
}

// getSeqs returns the records of seqs with one lookup each. It stops once
// the data reaches maxBytes, after at least one record.
func getSeqs(txn *badger.Txn, seqs []uint64, maxBytes int) ([]Record, error) {
	records := make([]Record, 0, len(seqs))
	size := 0
	for _, seq := range seqs {
		if maxBytes > 0 && size >= maxBytes {
			break
		}
		r, err := getRecord(txn, seq)
		if err != nil {
			return nil, err
		}
		records = append(records, r)
		size += len(r.Data)
	}
	return records, nil
}

// indexedSeqs returns the first q.Limit sequence numbers in (q.After,
// q.Through] of records named in q.Events, in order.
func indexedSeqs(txn *badger.Txn, q Query) []uint64 {
	var seqs []uint64
	for _, name := range q.Events {
		prefix := append(append([]byte{prefixIndex}, name...), 0)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})

		found := 0
		for it.Seek(indexKey(name, q.After+1)); it.Valid() && found < q.Limit; it.Next() {
			key := it.Item().Key()
			seq := binary.BigEndian.Uint64(key[len(key)-8:])
			if seq > q.Through {
				break
			}
			seqs = append(seqs, seq)
			found++
		}
		it.Close()
	}

	if len(q.Events) > 1 {
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		if len(seqs) > q.Limit {
			seqs = seqs[:q.Limit]
		}
	}
	return seqs
}

// Get returns the record with sequence number seq, or ErrNotFound.
func (l *Log) Get(seq uint64) (Record, error) {
	if seq == 0 || seq > l.Head() {
		return Record{}, fmt.Errorf("get seq %d: %w", seq, ErrNotFound)
	}

	var r Record
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		r, err = getRecord(txn, seq)
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("get seq %d: %w", seq, err)
	}
	return r, nil
}

func getRecord(txn *badger.Txn, seq uint64) (Record, error) {
	item, err := txn.Get(eventKey(seq))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, err
	}

	return itemRecord(item, seq)
}

// itemRecord decodes the record seq from its item.
func itemRecord(item *badger.Item, seq uint64) (Record, error) {
	value, err := item.ValueCopy(nil)
	if err != nil {
		return Record{}, err
	}
	return decodeRecord(seq, value)
}

// SeqAt returns the sequence number of the first record whose timestamp is
// at or after t, or Head()+1 when every record is older. Timestamps never
// decrease along the log, so this is a binary search.
func (l *Log) SeqAt(t time.Time) (uint64, error) {
	lo, hi := uint64(1), l.Head()+1 // the answer lies in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		r, err := l.Get(mid)
		if err != nil {
			return 0, fmt.Errorf("find seq at %s: %w", t.Format(time.RFC3339Nano), err)
		}
		if r.Timestamp.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

func eventKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixEvent}, seq)
}

func indexKey(event string, seq uint64) []byte {
	key := make([]byte, 0, 1+len(event)+1+8)
	key = append(key, prefixIndex)
	key = append(key, event...)
	key = append(key, 0)
	return binary.BigEndian.AppendUint64(key, seq)
}
