package kafkabus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/testenv"
)

func produce(t *testing.T, c *kafkabus.Client, topic string, n int, key func(i int) string) {
	t.Helper()
	p := kafkabus.NewProducer(c)
	defer p.Close()
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		k := key(i)
		msgs = append(msgs, kafkabus.Event(topic, k, "test", "tenant-"+k[len(k)-1:], "", []byte(fmt.Sprint(i))))
	}
	require.NoError(t, p.Publish(context.Background(), msgs...))
}

// committed returns the group's committed offsets of topic's 3 partitions.
func committed(t *testing.T, c *kafkabus.Client, group, topic string) map[int]int64 {
	t.Helper()
	res, err := c.Raw().OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
	require.NoError(t, err)
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// Messages of one key are handled in order, all are handled, and every offset is committed.
func TestConsumeConcurrentOrderPerKey(t *testing.T) {
	env := testenv.New(t)
	c := env.Kafka(t)
	topic := env.Topics.Log
	const n = 300
	produce(t, c, topic, n, func(i int) string { return fmt.Sprintf("key-%d", i%7) })

	var mu sync.Mutex
	seen := map[string][]int{}
	total := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	group := "g" + env.Suffix
	go func() {
		done <- kafkabus.ConsumeConcurrent(ctx, c, kafkabus.ConcurrentConfig{
			ConsumerConfig: kafkabus.ConsumerConfig{GroupID: group, Topics: []string{topic}},
			GroupOf:        func(m kafka.Message) string { return kafkabus.Header(m, kafkabus.HeaderTenant) },
			Lanes:          4, QueueSize: 8,
		}, func(_ context.Context, m kafka.Message) error {
			var i int
			fmt.Sscan(string(m.Value), &i)
			mu.Lock()
			seen[string(m.Key)] = append(seen[string(m.Key)], i)
			total++
			mu.Unlock()
			return nil
		})
	}()
	testenv.Eventually(t, 30*time.Second, "all messages handled", func() bool { mu.Lock(); defer mu.Unlock(); return total >= n })
	cancel()
	require.NoError(t, <-done)
	for k, order := range seen {
		for i := 1; i < len(order); i++ {
			assert.Less(t, order[i-1], order[i], "key %s handled out of order: %v", k, order)
		}
	}
	var sum int64
	for _, off := range committed(t, c, group, topic) {
		sum += off
	}
	assert.EqualValues(t, n, sum, "committed offsets cover every message")
}

// A message that is never handled holds its partition's commit, whatever follows it.
func TestConsumeConcurrentNeverCommitsPastUnhandled(t *testing.T) {
	env := testenv.New(t)
	c := env.Kafka(t)
	topic := env.Topics.Log
	const n = 60
	// One key: every message lands on one partition, in order.
	produce(t, c, topic, n, func(int) string { return "same" })

	block := make(chan struct{})
	var mu sync.Mutex
	handled := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	group := "g" + env.Suffix
	go func() {
		done <- kafkabus.ConsumeConcurrent(ctx, c, kafkabus.ConcurrentConfig{
			ConsumerConfig: kafkabus.ConsumerConfig{GroupID: group, Topics: []string{topic}, HandleTimeout: time.Second},
			// Each message its own group, so later ones run while the 10th is stuck.
			GroupOf: func(m kafka.Message) string { return string(m.Value) },
		}, func(ctx context.Context, m kafka.Message) error {
			if string(m.Value) == "10" {
				select {
				case <-block:
				case <-ctx.Done():
				}
				return fmt.Errorf("not handled")
			}
			mu.Lock()
			handled++
			mu.Unlock()
			return nil
		})
	}()
	testenv.Eventually(t, 30*time.Second, "all other messages handled", func() bool { mu.Lock(); defer mu.Unlock(); return handled >= n-1 })
	cancel()
	close(block)
	require.NoError(t, <-done)
	var max int64 = -1
	for _, off := range committed(t, c, group, topic) {
		if off > max {
			max = off
		}
	}
	assert.LessOrEqual(t, max, int64(10), "committed offset must not pass the unhandled message (offset 10)")
}
