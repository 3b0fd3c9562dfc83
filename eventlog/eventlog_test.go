package eventlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func openDB(t testing.TB, dir string) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		t.Fatalf("open badger: %v", err)
	}
	return db
}

// openLog opens a log in a new directory and closes it at the end of the test.
func openLog(t testing.TB, opts Options) *Log {
	t.Helper()
	db := openDB(t, t.TempDir())
	l, err := Open(db, opts)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	t.Cleanup(func() {
		l.Close()
		db.Close()
	})
	return l
}

func appendOne(t *testing.T, l *Log, event, data string) Record {
	t.Helper()
	records, err := l.Append(context.Background(), []Entry{{Event: event, Data: []byte(data)}})
	if err != nil {
		t.Fatalf("append %s: %v", event, err)
	}
	return records[0]
}

func TestAppendKeepsDataByteForByte(t *testing.T) {
	l := openLog(t, Options{})
	data := `{ "b" : [1, 2],  "html": "<a & b>", "a": "é" }`

	rec := appendOne(t, l, "task.created", data)
	if rec.Seq != 1 {
		t.Errorf("seq = %d, want 1", rec.Seq)
	}

	got, err := l.Get(1)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if string(got.Data) != data {
		t.Errorf("data = %s, want %s", got.Data, data)
	}
	if got.ID != rec.ID || got.Event != "task.created" || !got.Timestamp.Equal(rec.Timestamp) {
		t.Errorf("get = %+v, want %+v", got, rec)
	}

	json := string(got.AppendJSON(nil))
	if !strings.HasSuffix(json, `"data":`+data+`}`) {
		t.Errorf("AppendJSON = %s, want the data unchanged at the end", json)
	}
}

func TestAppendBatchIsConsecutive(t *testing.T) {
	l := openLog(t, Options{})
	appendOne(t, l, "task.created", "1")

	records, err := l.Append(context.Background(), []Entry{
		{Event: "batch.created", Data: []byte("[]")},
		{Event: "task.created", Data: []byte("2")},
		{Event: "task.updated", Data: []byte("3")},
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	for i, r := range records {
		if want := uint64(i + 2); r.Seq != want {
			t.Errorf("records[%d].Seq = %d, want %d", i, r.Seq, want)
		}
	}
	if h := l.Head(); h != 4 {
		t.Errorf("head = %d, want 4", h)
	}
}

func TestAppendTooLargeAppendsNothing(t *testing.T) {
	l := openLog(t, Options{MaxBatchBytes: 1000})

	_, err := l.Append(context.Background(), []Entry{{Event: "task.created", Data: make([]byte, 2000)}})
	if !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("err = %v, want ErrBatchTooLarge", err)
	}
	if h := l.Head(); h != 0 {
		t.Errorf("head = %d, want 0", h)
	}
}

// Concurrent appends from 16 goroutines must get gapless seqs, consecutive
// within each append, and share commits.
func TestAppendConcurrentIsGapless(t *testing.T) {
	l := openLog(t, Options{})
	const writers, perWriter = 16, 100

	var mu sync.Mutex
	seen := make(map[uint64]string)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				data := fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)
				records, err := l.Append(context.Background(), []Entry{
					{Event: "task.created", Data: []byte(data)},
					{Event: "task.updated", Data: []byte(data)},
				})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if records[1].Seq != records[0].Seq+1 {
					t.Errorf("seqs of one append = %d, %d, want consecutive", records[0].Seq, records[1].Seq)
				}

				mu.Lock()
				for _, r := range records {
					if prev, dup := seen[r.Seq]; dup {
						t.Errorf("seq %d given twice: %s and %s", r.Seq, prev, data)
					}
					seen[r.Seq] = data
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	const total = writers * perWriter * 2
	if h := l.Head(); h != total {
		t.Fatalf("head = %d, want %d", h, total)
	}
	for seq := uint64(1); seq <= total; seq++ {
		if _, ok := seen[seq]; !ok {
			t.Errorf("seq %d missing", seq)
		}
	}

	records, err := l.Read(Query{Limit: total + 10})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(records) != total {
		t.Fatalf("read %d records, want %d", len(records), total)
	}
	for i, r := range records {
		if r.Seq != uint64(i+1) || string(r.Data) != seen[r.Seq] {
			t.Fatalf("records[%d] = seq %d data %s, want seq %d data %s", i, r.Seq, r.Data, i+1, seen[r.Seq])
		}
	}
	if commits := l.commits.Load(); commits >= writers*perWriter {
		t.Errorf("commits = %d for %d appends, want fewer (group commit)", commits, writers*perWriter)
	}
}

// A reader that tails the log while writers append must see every seq once,
// in order: never N+1 before N.
func TestReadNeverSkipsAhead(t *testing.T) {
	l := openLog(t, Options{})
	const writers, perWriter = 8, 100
	const total = writers * perWriter

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	readerDone := make(chan error, 1)
	go func() {
		var last uint64
		for last < total {
			records, err := l.Read(Query{After: last, Limit: 50})
			if err != nil {
				readerDone <- err
				return
			}
			for _, r := range records {
				if r.Seq != last+1 {
					readerDone <- fmt.Errorf("read seq %d after %d", r.Seq, last)
					return
				}
				last = r.Seq
			}
			if len(records) == 0 {
				if _, err := l.Wait(ctx, last); err != nil {
					readerDone <- err
					return
				}
			}
		}
		readerDone <- nil
	}()

	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range perWriter {
				if _, err := l.Append(ctx, []Entry{{Event: "task.created", Data: []byte("{}")}}); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()

	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
}

func TestReadFiltersByEvent(t *testing.T) {
	l := openLog(t, Options{})
	for _, name := range []string{"task.created", "task.updated", "task.created", "preset.created", "task.updated"} {
		appendOne(t, l, name, "{}")
	}

	tests := []struct {
		name  string
		query Query
		want  []uint64
	}{
		{"one event", Query{Limit: 10, Events: []string{"task.created"}}, []uint64{1, 3}},
		{"two events", Query{Limit: 10, Events: []string{"task.updated", "preset.created"}}, []uint64{2, 4, 5}},
		{"after", Query{After: 1, Limit: 10, Events: []string{"task.created"}}, []uint64{3}},
		{"through", Query{Through: 4, Limit: 10, Events: []string{"task.updated"}}, []uint64{2}},
		{"limit across events", Query{Limit: 2, Events: []string{"task.updated", "task.created"}}, []uint64{1, 2}},
		{"all", Query{After: 3, Limit: 10}, []uint64{4, 5}},
		{"none", Query{Limit: 10, Events: []string{"batch.finished"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records, err := l.Read(tt.query)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var got []uint64
			for _, r := range records {
				got = append(got, r.Seq)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("seqs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGetOutsideLog(t *testing.T) {
	l := openLog(t, Options{})
	appendOne(t, l, "task.created", "{}")

	for _, seq := range []uint64{0, 2, 1 << 40} {
		if _, err := l.Get(seq); !errors.Is(err, ErrNotFound) {
			t.Errorf("get %d: err = %v, want ErrNotFound", seq, err)
		}
	}
}

func TestReopenRecoversHead(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	db := openDB(t, dir)
	l, err := Open(db, Options{Now: func() time.Time { return start }})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	for range 3 {
		appendOne(t, l, "task.created", "{}")
	}
	l.Close()
	db.Close()

	// The clock went back by an hour: timestamps must still not decrease.
	db = openDB(t, dir)
	defer db.Close()
	l, err = Open(db, Options{Now: func() time.Time { return start.Add(-time.Hour) }})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()

	if h := l.Head(); h != 3 {
		t.Fatalf("head after reopen = %d, want 3", h)
	}
	rec := appendOne(t, l, "task.created", "{}")
	if rec.Seq != 4 {
		t.Errorf("seq after reopen = %d, want 4", rec.Seq)
	}
	if !rec.Timestamp.Equal(start) {
		t.Errorf("timestamp = %s, want %s (never decreasing)", rec.Timestamp, start)
	}
}

func TestSeqAt(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := base
	l := openLog(t, Options{Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}})

	// Seqs 1 and 2 at base, 3 at base+1m, 4 at base+2m.
	for _, step := range []time.Duration{0, 0, time.Minute, time.Minute} {
		mu.Lock()
		now = now.Add(step)
		mu.Unlock()
		appendOne(t, l, "task.created", "{}")
	}

	tests := []struct {
		at   time.Time
		want uint64
	}{
		{base.Add(-time.Hour), 1},
		{base, 1},
		{base.Add(time.Second), 3},
		{base.Add(time.Minute), 3},
		{base.Add(2 * time.Minute), 4},
		{base.Add(time.Hour), 5},
	}
	for _, tt := range tests {
		got, err := l.SeqAt(tt.at)
		if err != nil {
			t.Fatalf("SeqAt(%s): %v", tt.at, err)
		}
		if got != tt.want {
			t.Errorf("SeqAt(%s) = %d, want %d", tt.at, got, tt.want)
		}
	}
}

func TestCloseRejectsAppends(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l, err := Open(db, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}

	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	_, err = l.Append(context.Background(), []Entry{{Event: "task.created", Data: []byte("{}")}})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: err = %v, want ErrClosed", err)
	}
	if _, err := l.Wait(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("wait after close: err = %v, want ErrClosed", err)
	}
}

func TestCount(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	l, err := Open(db, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	// Seqs: 1 created, 2 updated, 3 created, 4 created, 5 preset.
	for _, name := range []string{"task.created", "task.updated", "task.created", "task.created", "preset.created"} {
		appendOne(t, l, name, "{}")
	}

	check := func(l *Log) {
		t.Helper()
		tests := []struct {
			events         []string
			after, through uint64
			want           uint64
		}{
			{[]string{"task.created"}, 0, 5, 3},
			{[]string{"task.created"}, 1, 5, 2},
			{[]string{"task.created"}, 1, 3, 1},
			{[]string{"task.created"}, 4, 5, 0},
			{[]string{"task.created", "task.updated"}, 0, 100, 4},
			{[]string{"batch.finished"}, 0, 5, 0},
			{[]string{"preset.created"}, 5, 5, 0},
		}
		for _, tt := range tests {
			got, err := l.Count(tt.events, tt.after, tt.through)
			if err != nil {
				t.Fatalf("count: %v", err)
			}
			if got != tt.want {
				t.Errorf("Count(%v, %d, %d) = %d, want %d", tt.events, tt.after, tt.through, got, tt.want)
			}
		}
	}
	check(l)
	l.Close()
	db.Close()

	// The counts continue after a reopen.
	db = openDB(t, dir)
	defer db.Close()
	l, err = Open(db, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	check(l)
	appendOne(t, l, "task.created", "{}")
	if got, _ := l.Count([]string{"task.created"}, 0, 6); got != 4 {
		t.Errorf("count after reopen and append = %d, want 4", got)
	}
}

func TestEventAppendedWakesOnlyItsName(t *testing.T) {
	l := openLog(t, Options{})
	_, created := l.EventAppended("task.created")

	appendOne(t, l, "task.updated", "{}")
	select {
	case <-created:
		t.Fatal("a task.updated append closed the task.created channel")
	default:
	}

	appendOne(t, l, "task.created", "{}")
	select {
	case <-created:
	case <-time.After(5 * time.Second):
		t.Fatal("a task.created append did not close the task.created channel")
	}
	if head, _ := l.EventAppended("task.created"); head != 2 {
		t.Errorf("head = %d, want 2", head)
	}
}

// TestReadByEventDenseAndSparse reads one name's records when they are
// dense in the log, which takes one iterator, and when they are sparse,
// which takes one lookup each, and checks that both find the same records.
func TestReadByEventDenseAndSparse(t *testing.T) {
	l := openLog(t, Options{})
	var created []uint64
	for i := range 60 {
		event := "task.updated"
		// Dense at first (every other record), then one in ten.
		if (i < 20 && i%2 == 0) || (i >= 20 && i%10 == 0) {
			event = "task.created"
		}
		r := appendOne(t, l, event, fmt.Sprintf(`{"i":%d}`, i))
		if event == "task.created" {
			created = append(created, r.Seq)
		}
	}

	for _, q := range []Query{
		{After: 0, Limit: 5, Events: []string{"task.created"}},  // seqs 1 to 9: dense
		{After: 20, Limit: 4, Events: []string{"task.created"}}, // seqs 21 to 51: sparse
		{After: 0, Limit: 100, Events: []string{"task.created"}},
	} {
		records, err := l.Read(q)
		if err != nil {
			t.Fatalf("read %+v: %v", q, err)
		}
		var want []uint64
		for _, seq := range created {
			if seq > q.After && len(want) < q.Limit {
				want = append(want, seq)
			}
		}
		var got []uint64
		for _, r := range records {
			got = append(got, r.Seq)
		}
		if !slices.Equal(got, want) {
			t.Errorf("read %+v: seqs %v, expected %v", q, got, want)
		}
	}
}

// TestReadByEventMissingRecord deletes a record that the name index still
// lists and checks that reading it fails with ErrNotFound.
func TestReadByEventMissingRecord(t *testing.T) {
	l := openLog(t, Options{})
	for range 4 {
		appendOne(t, l, "task.created", `{}`)
	}
	if err := l.db.Update(func(txn *badger.Txn) error { return txn.Delete(eventKey(3)) }); err != nil {
		t.Fatal(err)
	}

	_, err := l.Read(Query{Limit: 10, Events: []string{"task.created"}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("read with seq 3 missing: error %v, expected ErrNotFound", err)
	}
}
