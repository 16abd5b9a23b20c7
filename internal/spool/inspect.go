package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Info is what Inspect finds in a spool directory.
type Info struct {
	Stats
	InUse bool // a process has the spool open: the figures are a snapshot of a live spool
	PID   int  // that process's pid, as its lock file says (0: unknown)
}

// Inspect reads what the spool in dir holds without opening it: it takes no lock and
// writes nothing, so it works on a spool a running process has open (`calltrack spool
// status`). It reads the write-ahead log's segment files as tidwall/wal lays them out
// (files named by their first index, entries as uvarint length + data; a ".START" file
// is a truncation in progress and holds the new first segment); a tail entry still
// being written is not counted.
func Inspect(dir string) (Info, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return Info{}, fmt.Errorf("spool: %w", err)
	}
	if !fi.IsDir() {
		return Info{}, fmt.Errorf("spool: %s is not a directory", dir)
	}
	var info Info
	info.InUse, info.PID = inUseNow(dir)
	// A live spool's drainer may delete a segment between the listing and its read:
	// list again.
	for try := 0; ; try++ {
		err = inspect(dir, &info.Stats)
		if err == nil || try == 4 || !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return Info{}, fmt.Errorf("spool: inspect %s: %w", dir, err)
	}
	return info, nil
}

type segFile struct {
	index uint64
	path  string
}

func inspect(dir string, st *Stats) error {
	*st = Stats{}
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var segs []segFile
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || len(name) < 20 {
			continue
		}
		index, err := strconv.ParseUint(name[:20], 10, 64)
		if err != nil || index == 0 {
			continue
		}
		switch {
		case len(name) == 20:
			segs = append(segs, segFile{index, filepath.Join(dir, name)})
		case len(name) == 26 && strings.HasSuffix(name, ".START"):
			// The segments before it are being deleted; it is the first.
			segs = append(segs[:0], segFile{index, filepath.Join(dir, name)})
		}
	}
	if st.Bytes, err = sizeOf(des); err != nil {
		return err
	}
	if len(segs) == 0 {
		return nil
	}
	lastSeg := segs[len(segs)-1]
	data, err := os.ReadFile(lastSeg.path)
	if err != nil {
		return err
	}
	n, head := entries(data)
	first := segs[0].index
	end := lastSeg.index + uint64(n) // one past the last entry
	if end <= first {
		return nil // empty
	}
	st.Entries = end - first
	if len(segs) > 1 {
		b, err := os.ReadFile(segs[0].path)
		if err != nil {
			return err
		}
		_, head = entries(b)
	}
	if head != nil {
		var e entry
		if json.Unmarshal(head, &e) == nil {
			st.Oldest = e.At
		}
	}
	return nil
}

// entries counts the complete entries of a segment file's data and returns the first
// one's data (nil: none).
func entries(data []byte) (n int, first []byte) {
	for len(data) > 0 {
		size, k := binary.Uvarint(data)
		if k <= 0 || uint64(len(data)-k) < size {
			break // a tail being written
		}
		if n == 0 {
			first = data[k : k+int(size)]
		}
		data = data[k+int(size):]
		n++
	}
	return n, first
}
