package kafkabus_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/testenv"
)

// Many publishers at once (their messages batched together), each publishing its own
// key's messages one after another: every message is on the topic once, and each key's
// messages are in the order they were acknowledged.
func TestProducerConcurrentPublishesKeepEachKeysOrder(t *testing.T) {
	env := testenv.New(t)
	c := env.Kafka(t)
	topic := env.Topics.Log
	p := kafkabus.NewProducer(c)
	defer p.Close()
	const publishers, each = 40, 15
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for g := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("key-%d", g)
			for i := range each {
				if err := p.Publish(ctx, kafkabus.Event(topic, key, "test", "t", "", []byte(strconv.Itoa(i)))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[string][]int{}
	require.NoError(t, c.ReadAll(ctx, topic, func(m kafka.Message) {
		i, err := strconv.Atoi(string(m.Value))
		require.NoError(t, err)
		seen[string(m.Key)] = append(seen[string(m.Key)], i)
	}))
	want := make([]int, each)
	for i := range want {
		want[i] = i
	}
	require.Len(t, seen, publishers)
	for k, got := range seen {
		assert.Equal(t, want, got, k)
	}
}
