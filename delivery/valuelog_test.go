package delivery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
)

// TestCollectValueLogFreesExpiredAttempts fills value log files with
// attempt records that expire, lets compactions drop them, and checks that
// collectValueLog deletes the files they filled while newer records stay
// readable.
func TestCollectValueLogFreesExpiredAttempts(t *testing.T) {
	dir := t.TempDir()
	// The delivery database's options, made small: a value log file and a
	// memtable of 1 MiB, and a compaction after every flush.
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(false).WithDetectConflicts(false).
		WithValueThreshold(256).WithValueLogFileSize(1 << 20).WithMemTableSize(1 << 20).
		WithBaseTableSize(256 << 10).WithNumLevelZeroTables(1).WithNumLevelZeroTablesStall(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	short := &store{db: db, retention: time.Second}
	long := &store{db: db, retention: time.Hour}
	write := func(s *store, n int) {
		t.Helper()
		for range n {
			rec := AttemptRecord{
				UUID:      uuid.Must(uuid.NewV7()).String(),
				Event:     "task.created",
				URL:       "http://127.0.0.1:1/hook",
				CreatedAt: time.Now(),
				Response:  &AttemptResponse{Status: 200, Body: strings.Repeat("x", 1000)},
			}
			if err := s.commit("w1", change{attempt: &rec}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// About 4 MiB of records that expire after a second: the first files.
	write(short, 3000)
	expired := time.Now().Add(time.Second)
	first := valueLogFiles(t, dir)[0]
	for time.Now().Before(expired.Add(time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}

	// Records that stay push the expired ones through flushes and
	// compactions, which note the space they leave as garbage.
	write(long, 12000)
	var rewritten int
	for round := 0; ; round++ {
		n, err := short.collectValueLog(nil)
		if err != nil {
			t.Fatal(err)
		}
		rewritten += n
		if _, err := os.Stat(filepath.Join(dir, first)); os.IsNotExist(err) {
			break
		}
		if round == 20 {
			t.Fatalf("value log file %s still exists after collection (%d files rewritten, %d files in all)", first, rewritten, len(valueLogFiles(t, dir)))
		}
		write(long, 1000)
	}
	if rewritten == 0 {
		t.Fatal("collectValueLog reported no rewritten file")
	}

	got, total, err := long.attempts("w1", 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	if total < 12000 {
		t.Errorf("attempt records left: %d, expected at least the 12000 that do not expire", total)
	}
	if len(got) != 5 {
		t.Fatalf("attempt page: %d records, expected 5", len(got))
	}
	if got[0].Response == nil || len(got[0].Response.Body) != 1000 {
		t.Errorf("newest attempt record after collection: %+v, expected its 1000-byte response body", got[0])
	}
}

func valueLogFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		names[i] = filepath.Base(name)
	}
	return names
}
