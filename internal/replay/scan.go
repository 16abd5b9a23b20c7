package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/kafkabus"
)

// Range is the offsets [Start, End) of one partition to read.
type Range struct {
	Partition  int
	Start, End int64
}

// Scan is a planned read of a topic: the offset ranges that hold the window, fixed when
// planned. It never tails: records published after the plan are not read.
type Scan struct {
	Topic  string
	Window Window
	Ranges []Range // non-empty ranges only
	k      *kafkabus.Client
	// StallTimeout bounds a wait for the next record of a range (default 15s).
	StallTimeout time.Duration
}

// Plan finds the offset ranges of topic that hold the window, using the end offsets of
// now: timestamps are mapped to offsets with ListOffsets, so only the window is read.
func Plan(ctx context.Context, k *kafkabus.Client, topic string, w Window) (*Scan, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	parts, err := k.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	if len(w.Partitions) > 0 {
		for _, p := range w.Partitions {
			if !slices.Contains(parts, p) {
				return nil, fmt.Errorf("%w: %s has no partition %d (it has %d)", ErrBadWindow, topic, p, len(parts))
			}
		}
		parts = slices.Clone(w.Partitions)
		slices.Sort(parts)
		parts = slices.Compact(parts)
	}
	// The end first: whatever is published from now on is outside the window.
	end, err := k.EndOffsets(ctx, topic, parts)
	if err != nil {
		return nil, err
	}
	start, err := k.FirstOffsets(ctx, topic, parts)
	if err != nil {
		return nil, err
	}
	if !w.Since.IsZero() {
		at, err := k.OffsetsAt(ctx, topic, parts, w.Since)
		if err != nil {
			return nil, err
		}
		for p, off := range at {
			start[p] = max(start[p], off)
		}
	}
	if !w.Until.IsZero() {
		at, err := k.OffsetsAt(ctx, topic, parts, w.Until)
		if err != nil {
			return nil, err
		}
		for p, off := range at {
			end[p] = min(end[p], off)
		}
	}
	s := &Scan{Topic: topic, Window: w, k: k}
	for _, p := range parts {
		from, to := start[p], end[p]
		if o := w.Offsets; o != nil {
			from = max(from, o.From)
			if o.To >= 0 {
				to = min(to, o.To+1)
			}
		}
		if from < to {
			s.Ranges = append(s.Ranges, Range{Partition: p, Start: from, End: to})
		}
	}
	return s, nil
}

// Total is the number of offsets the scan covers (an upper bound of the records: a
// compacted topic has gaps).
func (s *Scan) Total() int64 {
	var n int64
	for _, r := range s.Ranges {
		n += r.End - r.Start
	}
	return n
}

// Each calls fn with every record of the ranges, partition by partition, in offset
// order (so one call's events keep their order). Records outside the window's time
// bounds are passed too: check Window.Contains. An error from fn stops the scan.
func (s *Scan) Each(ctx context.Context, fn func(kafka.Message) error) error {
	for _, r := range s.Ranges {
		if err := s.read(ctx, r, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Scan) read(ctx context.Context, rg Range, fn func(kafka.Message) error) error {
	err := s.k.ReadRange(ctx, s.Topic, rg.Partition, rg.Start, rg.End, s.StallTimeout, fn)
	if err != nil && ctx.Err() == nil && errors.Is(err, kafkabus.ErrStalled) {
		return fmt.Errorf("replay: %s[%d] %d-%d: %w", s.Topic, rg.Partition, rg.Start, rg.End-1, err)
	}
	return err
}
