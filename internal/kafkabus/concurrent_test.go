package kafkabus_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
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

// With its handlers stuck and a large backlog, the consumer stops fetching at its byte
// bound (back-pressure): what it tracks never exceeds MaxBytes, and once the handlers
// move again everything is handled and committed.
func TestConsumeConcurrentIsBoundedInBytes(t *testing.T) {
	env := testenv.New(t)
	c := env.Kafka(t)
	topic := env.Topics.Log
	const n, valueSize, maxBytes = 3000, 1024, 128 << 10
	p := kafkabus.NewProducer(c)
	defer p.Close()
	value := make([]byte, valueSize)
	for batch := 0; batch < n; batch += 500 {
		var msgs []kafka.Message
		for i := batch; i < batch+500; i++ {
			k := fmt.Sprintf("key-%d", i%40)
			msgs = append(msgs, kafkabus.Event(topic, k, "test", "tenant-"+k[len(k)-1:], "", value))
		}
		require.NoError(t, p.Publish(context.Background(), msgs...))
	}

	release := make(chan struct{})
	var handled, overflowed, tracked, maxTracked atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	group := "g" + env.Suffix
	go func() {
		done <- kafkabus.ConsumeConcurrent(ctx, c, kafkabus.ConcurrentConfig{
			ConsumerConfig: kafkabus.ConsumerConfig{GroupID: group, Topics: []string{topic}},
			GroupOf:        func(m kafka.Message) string { return kafkabus.Header(m, kafkabus.HeaderTenant) },
			Lanes:          2, QueueSize: 2, MaxBytes: maxBytes,
			// As the writer does: a tenant whose lanes are full has its messages moved on.
			Overflow: func(context.Context, kafka.Message) error { overflowed.Add(1); return nil },
			OnTracked: func(b int64) {
				tracked.Store(b)
				for {
					m := maxTracked.Load()
					if b <= m || maxTracked.CompareAndSwap(m, b) {
						return
					}
				}
			},
		}, func(ctx context.Context, m kafka.Message) error {
			select {
			case <-release: // the CRM answers again
			case <-ctx.Done():
				return ctx.Err()
			}
			handled.Add(1)
			return nil
		})
	}()
	testenv.Eventually(t, 60*time.Second, "the consumer at its byte bound", func() bool { return tracked.Load() > maxBytes*9/10 })
	seen := handled.Load() + overflowed.Load()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("stuck: tracked %d bytes (bound %d), %d of %d messages fetched, heap %d KiB", tracked.Load(), maxBytes, seen, n, ms.HeapAlloc>>10)
	assert.Less(t, seen, int64(n/2), "fetching stopped at the bound instead of reading the backlog")
	assert.LessOrEqual(t, maxTracked.Load(), int64(maxBytes), "tracked bytes never pass the bound")

	close(release)
	testenv.Eventually(t, 60*time.Second, "every message handled", func() bool { return handled.Load()+overflowed.Load() >= n })
	testenv.Eventually(t, 30*time.Second, "every offset committed", func() bool {
		var sum int64
		for _, off := range committed(t, c, group, topic) {
			sum += off
		}
		return sum == n
	})
	assert.LessOrEqual(t, maxTracked.Load(), int64(maxBytes))
	assert.EqualValues(t, n, handled.Load()+overflowed.Load(), "each message once")
	cancel()
	require.NoError(t, <-done)
	assert.Zero(t, tracked.Load(), "nothing tracked once stopped")
}

// A rebalance stops the work on the partitions this member had: its handlers still
// running are cancelled after the grace and its queued messages are left to the
// partitions' new owners, so no message is handled to the end twice.
func TestConsumeConcurrentStopsWorkOnRebalance(t *testing.T) {
	env := testenv.New(t)
	c := env.Kafka(t)
	topic := env.Topics.Log
	const n = 90
	produce(t, c, topic, n, func(i int) string { return fmt.Sprintf("key-%d", i) })

	var (
		mu        sync.Mutex
		completed = map[string]int{} // message value → times handled to the end
		cancelled atomic.Int64
		blocking  atomic.Bool // consumer A's CRM hangs until its first rebalance
	)
	blocking.Store(true)
	complete := func(m kafka.Message) {
		mu.Lock()
		completed[string(m.Value)]++
		mu.Unlock()
	}
	total := func() int { mu.Lock(); defer mu.Unlock(); return len(completed) }
	group := "g" + env.Suffix
	run := func(h kafkabus.Handler) (context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- kafkabus.ConsumeConcurrent(ctx, c, kafkabus.ConcurrentConfig{
				ConsumerConfig: kafkabus.ConsumerConfig{GroupID: group, Topics: []string{topic}},
				Lanes:          4, QueueSize: 4, RebalanceGrace: time.Second,
			}, h)
		}()
		return cancel, done
	}
	var startedA atomic.Int64
	stopA, doneA := run(func(ctx context.Context, m kafka.Message) error {
		if blocking.Load() {
			startedA.Add(1)
			<-ctx.Done() // a request that does not come back
			cancelled.Add(1)
			blocking.Store(false)
			return ctx.Err()
		}
		complete(m)
		return nil
	})
	testenv.Eventually(t, 60*time.Second, "consumer A busy on its partitions", func() bool { return startedA.Load() >= 4 })
	stopB, doneB := run(func(_ context.Context, m kafka.Message) error { complete(m); return nil })

	testenv.Eventually(t, 60*time.Second, "A's stuck handlers cancelled by the rebalance", func() bool { return cancelled.Load() >= 4 })
	testenv.Eventually(t, 60*time.Second, "every message handled", func() bool { return total() >= n })
	stopA()
	stopB()
	require.NoError(t, <-doneA)
	require.NoError(t, <-doneB)
	mu.Lock()
	defer mu.Unlock()
	for v, k := range completed {
		assert.Equal(t, 1, k, "message %s handled to the end %d times", v, k)
	}
	assert.Len(t, completed, n)
}
