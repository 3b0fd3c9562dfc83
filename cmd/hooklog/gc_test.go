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
	if got := setGCPercent(); got != defaultGCPercent {
		t.Errorf("without GOGC: setGCPercent returned %d, expected %d", got, defaultGCPercent)
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("without GOGC: the runtime's percent is %d, expected %d", got, defaultGCPercent)
	}

	// The runtime reads GOGC when the process starts; this sets what it
	// would have read.
	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80)
	if got := setGCPercent(); got != 80 {
		t.Errorf("with GOGC=80: setGCPercent returned %d, expected 80", got)
	}
	if got := debug.SetGCPercent(100); got != 80 {
		t.Errorf("with GOGC=80: the runtime's percent is %d, expected 80", got)
	}
}
