package app

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// countingStringer counts how often it is formatted.
type countingStringer struct{ calls *int }

func (c countingStringer) String() string {
	*c.calls++
	return "value"
}

func TestBadgerDebugLinesFormattedOnlyAtDebug(t *testing.T) {
	var out bytes.Buffer
	calls := 0
	arg := countingStringer{&calls}

	info := badgerLogger{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	info.Debugf("writeRequests called: %v\n", arg)
	info.Infof("compaction: %v\n", arg)
	if calls != 0 || out.Len() != 0 {
		t.Errorf("at info level: formatted %d times, logged %q; expected nothing", calls, out.String())
	}

	debug := badgerLogger{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	debug.Debugf("writeRequests called: %v\n", arg)
	if calls != 1 {
		t.Errorf("at debug level: formatted %d times, expected once", calls)
	}
	if !strings.Contains(out.String(), "badger: writeRequests called: value") {
		t.Errorf("at debug level: logged %q", out.String())
	}
}
