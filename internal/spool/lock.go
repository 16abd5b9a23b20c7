package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LockFile is the file in a spool directory that names the pid of the process with the
// spool open. The lock itself is an exclusive flock(2) on the directory, from Open to
// Close: a lock on a file could be got round by deleting the file (a new one, a new
// lock), and the directory cannot go without the spool in it.
const LockFile = "spool.lock"

// ErrInUse: another process has the spool directory open (Open refuses; one process per
// spool, or appends go to a segment the other one deletes).
var ErrInUse = errors.New("in use by another process")

var errWouldBlock = errors.New("lock held")

// lockWait is how long Open retries a held lock before it refuses, so that `spool
// status` (which holds a shared lock for an instant to see whether a spool is live)
// never makes a starting process fail.
const lockWait = time.Second

// lockDir takes the spool directory's lock, or fails with ErrInUse.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: lock %s: %w", dir, err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err = flock(f)
		if !errors.Is(err, errWouldBlock) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, inUse(dir)
		}
		return nil, fmt.Errorf("spool: lock %s: %w", dir, err)
	}
	// Who holds it, for the error another process gets; the lock, not this, is what counts.
	_ = os.WriteFile(filepath.Join(dir, LockFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o640)
	return f, nil
}

func inUse(dir string) error {
	holder := "pid unknown"
	if pid := lockPID(dir); pid > 0 {
		holder = fmt.Sprintf("pid %d?", pid) // "?": in another container it is another pid namespace's
	}
	return fmt.Errorf("spool %s is %w (%s): one process per spool directory — stop it first; `calltrack spool status --dir %s` reads a spool in use",
		dir, ErrInUse, holder, dir)
}

// lockPID is the pid the lock file names (0: none).
func lockPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, LockFile))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// inUseNow reports whether a process has the spool in dir open, and its pid when it
// says. It takes a shared lock for an instant (Open waits lockWait for it).
func inUseNow(dir string) (bool, int) {
	f, err := os.Open(dir)
	if err != nil {
		return false, 0
	}
	defer f.Close()
	if !heldElsewhere(f) {
		return false, 0
	}
	return true, lockPID(dir)
}
