package kafkabus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/testenv"
)

// publishAt writes one message per time, all with one key (one partition), and returns
// that partition.
func publishAt(t *testing.T, c *kafkabus.Client, topic string, times ...time.Time) int {
	t.Helper()
	p := kafkabus.NewProducer(c)
	defer p.Close()
	var msgs []kafka.Message
	for _, at := range times {
		m := kafkabus.Event(topic, "acme:call-1", "test", "acme", "call-1", []byte(`{}`))
		m.Time = at
		msgs = append(msgs, m)
	}
	require.NoError(t, p.Publish(t.Context(), msgs...))
	parts, err := c.Partitions(t.Context(), topic)
	require.NoError(t, err)
	end, err := c.EndOffsets(t.Context(), topic, parts)
	require.NoError(t, err)
	for p, off := range end {
		if off > 0 {
			return p
		}
	}
	t.Fatal("no partition holds the messages")
	return -1
}

func TestOffsetsByTime(t *testing.T) {
	env := testenv.New(t)
	c := env.Kafka(t)
	topic := env.Topics.DLQ
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	part := publishAt(t, c, topic, t0, t0.Add(time.Minute), t0.Add(2*time.Minute))

	parts, err := c.Partitions(t.Context(), topic)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1, 2}, parts)
	first, err := c.FirstOffsets(t.Context(), topic, parts)
	require.NoError(t, err)
	end, err := c.EndOffsets(t.Context(), topic, parts)
	require.NoError(t, err)
	for _, p := range parts {
		assert.EqualValues(t, 0, first[p], "first offset of %d", p)
		if p == part {
			assert.EqualValues(t, 3, end[p])
		} else {
			assert.EqualValues(t, 0, end[p])
		}
	}
	at, err := c.OffsetsAt(t.Context(), topic, parts, t0.Add(30*time.Second))
	require.NoError(t, err)
	assert.EqualValues(t, 1, at[part], "first record at or after the time")
	at, err = c.OffsetsAt(t.Context(), topic, parts, t0.Add(-time.Minute))
	require.NoError(t, err)
	assert.EqualValues(t, 0, at[part])
	at, err = c.OffsetsAt(t.Context(), topic, parts, time.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.EqualValues(t, 3, at[part], "nothing that recent: the end")

	_, err = c.Partitions(t.Context(), "no.such.topic"+env.Suffix)
	assert.ErrorIs(t, err, kafkabus.ErrUnknownTopic)
}

// A group with a member is refused; once stopped, its offsets move to the time and its
// next consumer reads from there.
func TestResetGroup(t *testing.T) {
	env := testenv.New(t)
	c := env.Kafka(t)
	topic := env.Topics.Log
	group := "reset" + env.Suffix
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	part := publishAt(t, c, topic, t0, t0.Add(time.Minute), t0.Add(2*time.Minute))

	var (
		mu   sync.Mutex
		seen []int64
	)
	consume := func() context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = kafkabus.ConsumeConcurrent(ctx, c, kafkabus.ConcurrentConfig{ConsumerConfig: kafkabus.ConsumerConfig{GroupID: group, Topics: []string{topic}, Log: zerolog.Nop()}},
				func(_ context.Context, m kafka.Message) error {
					mu.Lock()
					seen = append(seen, m.Offset)
					mu.Unlock()
					return nil
				})
		}()
		return func() { cancel(); <-done }
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }

	stop := consume()
	testenv.Eventually(t, 30*time.Second, "the consumer read all 3", func() bool { return count() == 3 })
	testenv.Eventually(t, 30*time.Second, "the consumer committed", func() bool {
		off, err := c.Committed(t.Context(), group, topic, []int{part})
		return err == nil && off[part] == 3
	})
	_, err := c.ResetGroup(t.Context(), group, topic, t0.Add(30*time.Second), false)
	require.Error(t, err)
	assert.True(t, errors.Is(err, kafkabus.ErrGroupActive), "%v", err)
	assert.Contains(t, err.Error(), "stop its consumers first")

	stop()
	testenv.Eventually(t, 30*time.Second, "the group is empty", func() bool {
		g, err := c.DescribeGroup(t.Context(), group)
		return err == nil && len(g.Members) == 0
	})
	dry, err := c.ResetGroup(t.Context(), group, topic, t0.Add(30*time.Second), true)
	require.NoError(t, err)
	assert.Equal(t, 3, dry.Moved(), "the read partition goes back; the others get their first commit")
	off, err := c.Committed(t.Context(), group, topic, []int{part})
	require.NoError(t, err)
	assert.EqualValues(t, 3, off[part], "a dry run commits nothing")

	res, err := c.ResetGroup(t.Context(), group, topic, t0.Add(30*time.Second), false)
	require.NoError(t, err)
	require.Len(t, res.Partitions, 3)
	for _, p := range res.Partitions {
		if p.Partition == part {
			assert.Equal(t, kafkabus.PartitionReset{Partition: part, From: 3, To: 1}, p)
		}
	}
	off, err = c.Committed(t.Context(), group, topic, []int{part})
	require.NoError(t, err)
	assert.EqualValues(t, 1, off[part])

	stop = consume()
	defer stop()
	testenv.Eventually(t, 30*time.Second, "the restarted consumer read from the reset offset", func() bool { return count() == 5 })
	mu.Lock()
	assert.Equal(t, []int64{0, 1, 2, 1, 2}, seen)
	mu.Unlock()

	// A group nobody ever ran: nothing committed before, the log start after.
	res, err = c.ResetGroup(t.Context(), "fresh"+env.Suffix, topic, time.Time{}, false)
	require.NoError(t, err)
	for _, p := range res.Partitions {
		assert.EqualValues(t, -1, p.From)
		assert.EqualValues(t, 0, p.To)
	}
}
