package eventlog

import (
	"context"
	"strings"
	"testing"
)

var benchData = []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)

// BenchmarkAppend appends one 1 KiB event per operation and waits for it to
// be durable: the latency of a lone publisher.
func BenchmarkAppend(b *testing.B) {
	l := openLog(b, Options{})
	entries := []Entry{{Event: "task.created", Data: benchData}}
	b.SetBytes(int64(len(benchData)))

	for b.Loop() {
		if _, err := l.Append(context.Background(), entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel appends from 64 goroutines per core, so that
// appends share group commits.
func BenchmarkAppendParallel(b *testing.B) {
	l := openLog(b, Options{})
	entries := []Entry{{Event: "task.created", Data: benchData}}
	b.SetBytes(int64(len(benchData)))
	b.SetParallelism(32)

	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), entries); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReadRange reads 64 consecutive records, as a worker's read-ahead
// does without a name filter.
func BenchmarkReadRange(b *testing.B) {
	l := fillLog(b, 10000)
	b.ResetTimer()

	after := uint64(0)
	for b.Loop() {
		records, err := l.Read(Query{After: after, Limit: 64})
		if err != nil || len(records) != 64 {
			b.Fatalf("read %d records: %v", len(records), err)
		}
		after = (after + 64) % 9000
	}
}

// BenchmarkReadByEvent reads 64 records of one name through the name index,
// as a webhook's worker does.
func BenchmarkReadByEvent(b *testing.B) {
	l := fillLog(b, 10000)
	b.ResetTimer()

	after := uint64(0)
	for b.Loop() {
		records, err := l.Read(Query{After: after, Limit: 64, Events: []string{"task.created"}})
		if err != nil || len(records) != 64 {
			b.Fatalf("read %d records: %v", len(records), err)
		}
		after = (after + 128) % 8000
	}
}

// fillLog returns a log of n 1 KiB events, alternately task.created and
// task.updated.
func fillLog(b *testing.B, n int) *Log {
	b.Helper()
	l := openLog(b, Options{})
	for i := 0; i < n; i += 500 {
		batch := make([]Entry, 500)
		for j := range batch {
			batch[j] = Entry{Event: "task.created", Data: benchData}
			if j%2 == 1 {
				batch[j].Event = "task.updated"
			}
		}
		if _, err := l.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	return l
}
