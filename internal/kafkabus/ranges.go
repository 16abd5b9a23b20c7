package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrStalled means a bounded read made no progress for its stall timeout.
var ErrStalled = errors.New("kafka: read stalled")

// ReadRange calls fn with every record of one partition in [from, to), in offset
// order, for tools that read a fixed window (replay, the mapping rebuild). It fetches
// directly — a fetch of up to 8 MiB at a time, no reader goroutine or per-message
// queue — which reads a window about twice as fast as a kafka-go Reader. Gaps in the
// offsets (compaction, transaction markers) are skipped; the read ends at the first
// offset at or past to, or at the partition's end. A fetch that fails transiently is
// retried; no progress for stall (default 15 s) is ErrStalled. An error from fn stops
// the read and is returned.
func (c *Client) ReadRange(ctx context.Context, topic string, partition int, from, to int64, stall time.Duration, fn func(kafka.Message) error) error {
	if stall <= 0 {
		stall = 15 * time.Second
	}
	off := from
	progress := time.Now()
	for off < to {
		res, err := c.client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: partition, Offset: off,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond})
		if err == nil && res.Error != nil {
			err = res.Error
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ke kafka.Error
			if errors.As(err, &ke) && !ke.Temporary() {
				return fmt.Errorf("kafka: read %s[%d] at offset %d: %w", topic, partition, off, err)
			}
			if time.Since(progress) > stall {
				return fmt.Errorf("%w: %s[%d] at offset %d of %d: %w", ErrStalled, topic, partition, off, to, err)
			}
			if !sleep(ctx, 200*time.Millisecond) {
				return ctx.Err()
			}
			continue
		}
		n := 0
		for {
			r, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("kafka: read %s[%d] at offset %d: %w", topic, partition, off, err)
			}
			if r.Offset < off {
				continue // a fetch answers with whole batches: skip what came before off
			}
			if r.Offset >= to {
				return nil
			}
			m := kafka.Message{Topic: topic, Partition: partition, Offset: r.Offset, Time: r.Time, Headers: r.Headers}
			if m.Key, err = readBytes(r.Key); err == nil {
				m.Value, err = readBytes(r.Value)
			}
			if err != nil {
				return fmt.Errorf("kafka: read %s[%d] at offset %d: %w", topic, partition, r.Offset, err)
			}
			if err := fn(m); err != nil {
				return err
			}
			off = r.Offset + 1
			n++
		}
		if n > 0 {
			progress = time.Now()
			continue
		}
		// Nothing at or past off: the rest of the range is a gap, or markers only.
		if res.HighWatermark <= off {
			return nil
		}
		if time.Since(progress) > stall {
			return fmt.Errorf("%w: %s[%d] at offset %d of %d (high watermark %d)", ErrStalled, topic, partition, off, to, res.HighWatermark)
		}
	}
	return nil
}

// readBytes reads a record's key or value; nil stays nil (a tombstone's value).
func readBytes(b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	// Sized from the record's length: io.ReadAll would grow its buffer (and copy) a few
	// times for every value.
	buf := make([]byte, b.Len())
	if _, err := io.ReadFull(b, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
