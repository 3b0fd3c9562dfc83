package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestGCPercentDefaultAndGOGC(t *testing.T) {
	previous := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(previous) })

	// t.Setenv restores GOGC after the test; Unsetenv removes it for the
	// first case.
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	if got, invalid := setGCPercent(); got != defaultGCPercent || invalid {
		t.Errorf("without GOGC: setGCPercent returned %d, %v, expected %d, false", got, invalid, defaultGCPercent)
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("without GOGC: the runtime's percent is %d, expected %d", got, defaultGCPercent)
	}

	// The runtime reads GOGC when the process starts; this sets what it
	// would have read.
	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80)
	if got, invalid := setGCPercent(); got != 80 || invalid {
		t.Errorf("with GOGC=80: setGCPercent returned %d, %v, expected 80, false", got, invalid)
	}
	if got := debug.SetGCPercent(100); got != 80 {
		t.Errorf("with GOGC=80: the runtime's percent is %d, expected 80", got)
	}

	// The runtime reads an empty or invalid GOGC as 100.
	for _, value := range []string{"", "abc"} {
		t.Setenv("GOGC", value)
		debug.SetGCPercent(100)
		if got, invalid := setGCPercent(); got != defaultGCPercent || !invalid {
			t.Errorf("with GOGC=%q: setGCPercent returned %d, %v, expected %d, true", value, got, invalid, defaultGCPercent)
		}
		if got := debug.SetGCPercent(100); got != defaultGCPercent {
			t.Errorf("with GOGC=%q: the runtime's percent is %d, expected %d", value, got, defaultGCPercent)
		}
	}
}
