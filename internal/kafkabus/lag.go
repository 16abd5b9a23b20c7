package kafkabus

import (
	"context"
	"fmt"
)

// PartitionLag is where a consumer group stands on one partition.
type PartitionLag struct {
	Partition int
	Committed int64 // -1: the group has committed nothing here
	End       int64 // the offset the next record will get
	// Lag is the records the group has still to handle: End - Committed, or, with nothing
	// committed, every record the partition retains (a new group starts at the first).
	Lag int64
}

// Lag returns the group's position and lag on each partition of topic, in partition
// order: what `calltrack groups describe` prints and the consumer-lag metric sums.
func (c *Client) Lag(ctx context.Context, group, topic string) ([]PartitionLag, error) {
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	committed, err := c.Committed(ctx, group, topic, parts)
	if err != nil {
		return nil, err
	}
	end, err := c.EndOffsets(ctx, topic, parts)
	if err != nil {
		return nil, err
	}
	first, err := c.FirstOffsets(ctx, topic, parts)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionLag, 0, len(parts))
	for _, p := range parts {
		pl := PartitionLag{Partition: p, Committed: committed[p], End: end[p]}
		from := committed[p]
		if from < 0 || from < first[p] { // nothing committed, or committed before what is retained
			from = first[p]
		}
		pl.Lag = max(pl.End-from, 0)
		out = append(out, pl)
	}
	return out, nil
}

// EndOffsetSum is the sum of topic's partition end offsets: how many records were ever
// appended to it (the count of dead letters, for the DLQ).
func (c *Client) EndOffsetSum(ctx context.Context, topic string) (int64, error) {
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return 0, err
	}
	end, err := c.EndOffsets(ctx, topic, parts)
	if err != nil {
		return 0, fmt.Errorf("kafka: end offsets of %s: %w", topic, err)
	}
	var n int64
	for _, o := range end {
		n += o
	}
	return n, nil
}
