package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrUnknownTopic means the cluster has no topic of that name.
var ErrUnknownTopic = errors.New("kafka: unknown topic")

// Partitions lists the partition ids of topic, in order.
func (c *Client) Partitions(ctx context.Context, topic string) ([]int, error) {
	md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("kafka: metadata %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("%w %s", ErrUnknownTopic, topic)
		}
		if t.Error != nil {
			return nil, fmt.Errorf("kafka: metadata %s: %w", topic, t.Error)
		}
		parts := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
		if len(parts) == 0 {
			break
		}
		sort.Ints(parts)
		return parts, nil
	}
	return nil, fmt.Errorf("%w %s", ErrUnknownTopic, topic)
}

// FirstOffsets returns the first (log start) offset of each partition.
func (c *Client) FirstOffsets(ctx context.Context, topic string, parts []int) (map[int]int64, error) {
	return c.listOffsets(ctx, topic, parts, kafka.FirstOffset)
}

// EndOffsets returns the offset the next record of each partition will get (the high
// watermark): a reader that stops before it has read everything there was.
func (c *Client) EndOffsets(ctx context.Context, topic string, parts []int) (map[int]int64, error) {
	return c.listOffsets(ctx, topic, parts, kafka.LastOffset)
}

// OffsetsAt returns, per partition, the offset of the first record whose timestamp is at
// or after t, or the end offset when there is none (a window starting at t begins there).
func (c *Client) OffsetsAt(ctx context.Context, topic string, parts []int, t time.Time) (map[int]int64, error) {
	at, err := c.listOffsets(ctx, topic, parts, t.UnixMilli())
	if err != nil {
		return nil, err
	}
	var past []int
	for _, p := range parts {
		if at[p] < 0 {
			past = append(past, p)
		}
	}
	if len(past) == 0 {
		return at, nil
	}
	// Kafka answers -1 when no record is that recent.
	end, err := c.EndOffsets(ctx, topic, past)
	if err != nil {
		return nil, err
	}
	for _, p := range past {
		at[p] = end[p]
	}
	return at, nil
}

// listOffsets asks one thing (first, last, or a timestamp in ms) of every partition. The
// kinds are never mixed in one request: Kafka refuses a partition listed twice, and
// kafka-go files a timestamp query that found nothing (-1) as a "last offset".
func (c *Client) listOffsets(ctx context.Context, topic string, parts []int, ts int64) (map[int]int64, error) {
	// Right after a topic is created or a leader moves, brokers answer "not leader" or
	// "leader not available" for a moment: retry those briefly.
	for attempt := 0; ; attempt++ {
		out, err := c.listOffsetsOnce(ctx, topic, parts, ts)
		if err == nil || attempt == 20 || !(errors.Is(err, kafka.NotLeaderForPartition) ||
			errors.Is(err, kafka.LeaderNotAvailable) || errors.Is(err, kafka.UnknownTopicOrPartition)) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Client) listOffsetsOnce(ctx context.Context, topic string, parts []int, ts int64) (map[int]int64, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {}}}
	for _, p := range parts {
		req.Topics[topic] = append(req.Topics[topic], kafka.OffsetRequest{Partition: p, Timestamp: ts})
	}
	res, err := c.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("kafka: offsets of %s: %w", topic, err)
	}
	out := make(map[int]int64, len(parts))
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("kafka: offsets of %s[%d]: %w", topic, po.Partition, po.Error)
		}
		switch ts {
		case kafka.FirstOffset:
			// kafka-go files the answer by the timestamp the broker sends back, which
			// is -1 ("last") for an earliest-offset query too: take whichever is set.
			out[po.Partition] = max(po.FirstOffset, po.LastOffset)
		case kafka.LastOffset:
			out[po.Partition] = po.LastOffset
		default:
			out[po.Partition] = -1
			for off := range po.Offsets {
				out[po.Partition] = off
			}
		}
	}
	for _, p := range parts {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("kafka: offsets of %s[%d]: no answer", topic, p)
		}
	}
	return out, nil
}
