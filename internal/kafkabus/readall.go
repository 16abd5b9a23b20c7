package kafkabus

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReadAll calls fn with every record of topic, partition by partition, from the first
// offset to the end offsets the topic has when called (no consumer group): how a
// compacted journal (parked calls) is read back into Redis. Each partition is read
// with ReadRange; a stalled read (no progress for 30 s) is an error, not a hang.
func (c *Client) ReadAll(ctx context.Context, topic string, fn func(kafka.Message)) error {
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return err
	}
	first, err := c.FirstOffsets(ctx, topic, parts)
	if err != nil {
		return err
	}
	end, err := c.EndOffsets(ctx, topic, parts)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if end[p] <= first[p] {
			continue // empty partition
		}
		err := c.ReadRange(ctx, topic, p, first[p], end[p], 30*time.Second, func(m kafka.Message) error { fn(m); return nil })
		if err != nil {
			return err
		}
	}
	return nil
}
