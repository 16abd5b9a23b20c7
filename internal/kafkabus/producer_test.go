package kafkabus_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

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

// One publish across two topics and every partition, larger than one request holds:
// each message is written once, on the partition kafka-go's Hash balancer (the one its
// Writer used) gives its key, and each key's messages keep their order.
func TestProducerPlacesKeysAsKafkaGoAndSplitsLargePublishes(t *testing.T) {
	env := testenv.New(t)
	c := env.Kafka(t)
	p := kafkabus.NewProducer(c)
	defer p.Close()
	ctx := context.Background()
	topics := []string{env.Topics.Log, env.Topics.Recording}
	value := make([]byte, 2048) // 1200 messages of 2 KiB: about three requests' worth
	var msgs []kafka.Message
	for i := range 1200 {
		key := fmt.Sprintf("call-%d", i%97)
		v := append([]byte(strconv.Itoa(i)+":"), value...)
		msgs = append(msgs, kafkabus.Event(topics[i%2], key, "test", "t", "", v))
	}
	require.NoError(t, p.Publish(ctx, msgs...))

	var hash kafka.Hash
	for _, topic := range topics {
		var got []kafka.Message
		require.NoError(t, c.ReadAll(ctx, topic, func(m kafka.Message) { got = append(got, m) }))
		require.Len(t, got, 600, topic)
		last := map[string]int{}
		for _, m := range got {
			want := hash.Balance(kafka.Message{Key: m.Key}, 0, 1, 2)
			assert.Equal(t, want, m.Partition, "key %s", m.Key)
			n, err := strconv.Atoi(string(m.Value[:bytes.IndexByte(m.Value, ':')]))
			require.NoError(t, err)
			if prev, ok := last[string(m.Key)]; ok {
				assert.Greater(t, n, prev, "key %s out of order", m.Key)
			}
			last[string(m.Key)] = n
		}
	}
}

// A topic that does not exist: the publish fails with Kafka's own error, which callers
// can test for, once the producer's retries are spent.
func TestProducerUnknownTopicFails(t *testing.T) {
	env := testenv.New(t)
	p := kafkabus.NewProducer(env.Kafka(t))
	defer p.Close()
	err := p.Publish(context.Background(), kafkabus.Event(env.Topics.Log+".missing", "k", "test", "t", "", []byte("x")))
	require.Error(t, err)
	assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	assert.Contains(t, err.Error(), "1 of 1 messages not written")
}

// No broker: the publish gives up with the caller's deadline, and after Close the
// producer refuses, saying so.
func TestProducerNoBrokerAndClosed(t *testing.T) {
	c, err := kafkabus.NewClient(kafkabus.Config{Brokers: []string{"127.0.0.1:1"}})
	require.NoError(t, err)
	p := kafkabus.NewProducer(c)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = p.Publish(ctx, kafkabus.Event("calltrack.call-log", "k", "test", "t", "", []byte("x")))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, p.Close())
	err = p.Publish(context.Background(), kafkabus.Event("calltrack.call-log", "k", "test", "t", "", []byte("x")))
	require.ErrorIs(t, err, kafkabus.ErrProducerClosed)
}
