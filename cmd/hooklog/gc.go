package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is the garbage collector's target unless GOGC sets one.
// Most of hooklog's heap is Badger's memtables and table builders, which
// are allocated in pieces of megabytes, and Go's default of 100 lets the
// heap grow to twice its live data between collections. In one run of a
// catch-up of 1,000,000 events with 100 webhooks, 50 instead of 100 lowered
// the peak anonymous memory from 208 MB to 146 MB, and the drain was not
// slower (docs/benchmarks.md).
const defaultGCPercent = 50

// setGCPercent applies defaultGCPercent unless the GOGC environment variable
// holds a value the Go runtime accepts, "off" or a number, which the runtime
// has already applied. It returns the percent in effect, and whether GOGC
// was set but empty or invalid, which the runtime reads as 100.
func setGCPercent() (percent int, invalid bool) {
	value, set := os.LookupEnv("GOGC")
	if set && (value == "off" || validPercent(value)) {
		current := debug.SetGCPercent(100)
		debug.SetGCPercent(current)
		return current, false
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent, set
}

// validPercent reports whether the Go runtime reads value as a number: an
// optional minus sign and digits.
func validPercent(value string) bool {
	if strings.HasPrefix(value, "+") {
		return false
	}
	_, err := strconv.Atoi(value)
	return err == nil
}
