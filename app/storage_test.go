package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hooklog/hooklog/eventlog"
)

// TestLogValueLogFilesStaySmall checks what bounds the start-up time:
// opening the log, Badger reads the whole value log file written last, so
// no file may grow much past logValueLogFileSize.
func TestLogValueLogFilesStaySmall(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenDB(dir, slog.New(slog.DiscardHandler), logDB)
	if err != nil {
		t.Fatal(err)
	}
	log, err := eventlog.Open(db, eventlog.Options{MaxBatchBytes: maxBatchBytes, ValueThreshold: logValueThreshold})
	if err != nil {
		t.Fatal(err)
	}

	data := []byte(`"` + strings.Repeat("x", 512<<10) + `"`)
	for written := 0; written < logValueLogFileSize*3/2; written += len(data) {
		if _, err := log.Append(context.Background(), []eventlog.Entry{{Event: "task.created", Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("%d value log files after appending %d MiB, want the data split over 2 or more", len(files), logValueLogFileSize*3/2>>20)
	}
	// Badger starts a new file after the write that crosses the size, so
	// a file can end one group commit past it.
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > logValueLogFileSize+maxBatchBytes {
			t.Errorf("%s has %d bytes, want at most %d", filepath.Base(f), info.Size(), logValueLogFileSize+maxBatchBytes)
		}
	}
}
