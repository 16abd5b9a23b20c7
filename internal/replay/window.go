package replay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrBadWindow means a window flag could not be understood.
var ErrBadWindow = errors.New("replay: bad window")

// Window selects records of a topic: by record timestamp (publish time), by offsets,
// or both (their intersection). The zero Window is the whole retained topic.
type Window struct {
	Since, Until time.Time    // [Since, Until) on record timestamps; zero: open
	Partitions   []int        // only these partitions; nil: all
	Offsets      *OffsetRange // only these offsets (of every selected partition); nil: all
}

// OffsetRange is an inclusive range of offsets; To < 0 runs to the end.
type OffsetRange struct{ From, To int64 }

// Contains reports whether a record's timestamp is inside the time bounds. Producers'
// clocks make timestamps only roughly ordered, so every record read is checked.
func (w Window) Contains(m kafka.Message) bool {
	if !w.Since.IsZero() && m.Time.Before(w.Since) {
		return false
	}
	if !w.Until.IsZero() && !m.Time.Before(w.Until) {
		return false
	}
	return true
}

// Validate names what is wrong with the window.
func (w Window) Validate() error {
	if !w.Since.IsZero() && !w.Until.IsZero() && !w.Since.Before(w.Until) {
		return fmt.Errorf("%w: --since %s is not before --until %s", ErrBadWindow, w.Since.Format(time.RFC3339), w.Until.Format(time.RFC3339))
	}
	for _, p := range w.Partitions {
		if p < 0 {
			return fmt.Errorf("%w: partition %d", ErrBadWindow, p)
		}
	}
	if o := w.Offsets; o != nil {
		if o.From < 0 {
			return fmt.Errorf("%w: --from-offset %d is negative", ErrBadWindow, o.From)
		}
		if o.To >= 0 && o.To < o.From {
			return fmt.Errorf("%w: --to-offset %d is before --from-offset %d", ErrBadWindow, o.To, o.From)
		}
	}
	return nil
}

// String describes the window for the summary's first line.
func (w Window) String() string {
	var parts []string
	if !w.Since.IsZero() {
		parts = append(parts, "since "+w.Since.UTC().Format(time.RFC3339))
	}
	if !w.Until.IsZero() {
		parts = append(parts, "until "+w.Until.UTC().Format(time.RFC3339))
	}
	if len(w.Partitions) > 0 {
		parts = append(parts, fmt.Sprintf("partition %s", joinInts(w.Partitions)))
	}
	if o := w.Offsets; o != nil {
		if o.To >= 0 {
			parts = append(parts, fmt.Sprintf("offsets %d-%d", o.From, o.To))
		} else {
			parts = append(parts, fmt.Sprintf("offsets %d-end", o.From))
		}
	}
	if len(parts) == 0 {
		return "the whole topic"
	}
	return strings.Join(parts, ", ")
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// ParseTime reads a window bound: RFC 3339 ("2026-10-10T09:00:00Z"), a time ago as a Go
// duration or in days ("2h", "30m", "90s", "1d", "1d12h"), or "now". An empty string is
// the zero time (open).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "":
		return time.Time{}, nil
	case "now":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil // a date alone: its start, UTC
	}
	d, err := parseAgo(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is neither RFC 3339 (2026-10-10T09:00:00Z) nor a time ago (2h, 30m, 1d): %v", ErrBadWindow, s, err)
	}
	return now.Add(-d), nil
}

// parseAgo is time.ParseDuration plus a leading whole number of days ("1d", "2d6h").
func parseAgo(s string) (time.Duration, error) {
	s = strings.TrimPrefix(s, "-")
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, err
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, errors.New("negative duration")
	}
	return days + d, nil
}
