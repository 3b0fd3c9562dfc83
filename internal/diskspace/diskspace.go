// Package diskspace keeps writes off a file system that is nearly full.
// Badger writes through memory-mapped files, and a write to a mapped page
// that the file system cannot back ends the process with SIGBUS, so the
// space must be checked before the write, not after.
package diskspace

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// ErrFull is returned, wrapped, when a write would leave less free space
// than the reserve.
var ErrFull = errors.New("not enough free disk space")

// recheck is how long a measurement of the free space is reused.
const recheck = 100 * time.Millisecond

// Guard checks the free space of the file system that holds a directory.
// Its methods are safe for concurrent use.
type Guard struct {
	dir     string
	reserve uint64

	mu       sync.Mutex // guards free and measured
	free     uint64
	measured time.Time
}

// New returns a guard that keeps reserve bytes free under dir.
func New(dir string, reserve uint64) *Guard {
	return &Guard{dir: dir, reserve: reserve}
}

// Free returns the bytes available to unprivileged writers under dir.
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("measure free space of %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Check returns an error wrapping ErrFull if writing need bytes would leave
// less than the reserve free. It measures at most every 100 ms, and always
// when the last measurement was close to the limit.
func (g *Guard) Check(need int) error {
	g.mu.Lock()
	defer g.mu.Unlock()

	margin := g.reserve + 2*uint64(max(need, 0))
	if time.Since(g.measured) > recheck || g.free < 2*margin {
		free, err := Free(g.dir)
		if err != nil {
			return err
		}
		g.free, g.measured = free, time.Now()
	}
	if g.free < margin {
		return fmt.Errorf("%s has %d MiB free and keeps %d MiB in reserve: %w", g.dir, g.free>>20, g.reserve>>20, ErrFull)
	}
	g.free -= uint64(max(need, 0))
	return nil
}
