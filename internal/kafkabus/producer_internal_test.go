package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBroker is a kafka.RoundTripper with two leaders: it keeps the records of every
// partition it accepts and answers each partition with decide's error code.
type fakeBroker struct {
	parts  int
	decide func(topic string, first string) kafka.Error // first record's value; 0 accepts
	stall  chan struct{}                                // when set, produce waits for it or the deadline

	mu      sync.Mutex
	written []string // topic/value, in the order accepted
}

func (f *fakeBroker) RoundTrip(ctx context.Context, _ net.Addr, req kafka.Request) (kafka.Response, error) {
	switch r := req.(type) {
	case *metadataAPI.Request:
		res := &metadataAPI.Response{}
		for _, t := range r.TopicNames {
			rt := metadataAPI.ResponseTopic{Name: t}
			for i := range f.parts {
				rt.Partitions = append(rt.Partitions, metadataAPI.ResponsePartition{PartitionIndex: int32(i), LeaderID: int32(1 + i%2)})
			}
			res.Topics = append(res.Topics, rt)
		}
		return res, nil
	case *produceAPI.Request:
		f.mu.Lock()
		stall := f.stall
		f.mu.Unlock()
		if stall != nil {
			select {
			case <-stall:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		res := &produceAPI.Response{}
		for _, t := range r.Topics {
			rt := produceAPI.ResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				var vals []string
				for {
					rec, err := p.RecordSet.Records.ReadRecord()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						return nil, err
					}
					v, _ := protocol.ReadAll(rec.Value)
					vals = append(vals, t.Topic+"/"+string(v))
				}
				var code kafka.Error
				if f.decide != nil {
					code = f.decide(t.Topic, vals[0][len(t.Topic)+1:])
				}
				if code == 0 {
					f.written = append(f.written, vals...)
				}
				rt.Partitions = append(rt.Partitions, produceAPI.ResponsePartition{Partition: p.Partition, ErrorCode: int16(code)})
			}
			res.Topics = append(res.Topics, rt)
		}
		return res, nil
	}
	return nil, fmt.Errorf("fake broker: unexpected %T", req)
}

func (f *fakeBroker) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.written...)
}

func fakeProducer(t *testing.T, f *fakeBroker) *Producer {
	p := &Producer{transport: f, addr: kafka.TCP("fake:9092"), wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go p.run()
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// A publish larger than one request goes in two; when the first part fails for good, the
// second is not written after it: the publisher sends both again, and the key's order
// on its partition must not become B, A, B.
func TestProducerSplitPublishStopsAfterAFailure(t *testing.T) {
	f := &fakeBroker{parts: 1, decide: func(_, first string) kafka.Error {
		if first[0] == 'A' {
			return kafka.MessageSizeTooLarge // not retriable
		}
		return 0
	}}
	p := fakeProducer(t, f)
	big := make([]byte, maxRequestBytes)
	err := p.Publish(context.Background(),
		kafka.Message{Topic: "t", Key: []byte("K"), Value: append([]byte("A"), big...)},
		kafka.Message{Topic: "t", Key: []byte("K"), Value: []byte("B")})
	require.Error(t, err)
	assert.ErrorIs(t, err, kafka.MessageSizeTooLarge)
	assert.Contains(t, err.Error(), "2 of 2 messages not written")
	assert.Empty(t, f.log())
}

// Many publishers, a broker that refuses a quarter of partitions with a retriable error,
// publishers that give up early: every publish that returned nil is on the broker.
func TestProducerAcknowledgedMeansWritten(t *testing.T) {
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(1))
	f := &fakeBroker{parts: 4, decide: func(string, string) kafka.Error {
		mu.Lock()
		defer mu.Unlock()
		if rng.Intn(4) == 0 {
			return kafka.NotLeaderForPartition
		}
		return 0
	}}
	p := fakeProducer(t, f)
	var wg sync.WaitGroup
	var acked sync.Map
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+i%5)*40*time.Millisecond)
				v := fmt.Sprintf("%d-%d", g, i)
				err := p.Publish(ctx, kafka.Message{Topic: "t", Key: []byte(fmt.Sprint(g)), Value: []byte(v)},
					kafka.Message{Topic: "u", Value: []byte(v)})
				cancel()
				if err == nil {
					acked.Store(v, true)
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, w := range f.log() {
		seen[w] = true
	}
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		assert.True(t, seen["t/"+k.(string)] && seen["u/"+k.(string)], "acknowledged but not written: %s", k)
		return true
	})
	assert.Positive(t, n, "no publish succeeded: the test says nothing")
}

// A broker that does not answer holds the sender only as long as its publishers wait:
// the next publish goes through once it answers again, not after the 10 s request timeout.
func TestProducerUnansweredRequestEndsWithItsPublishers(t *testing.T) {
	stall := make(chan struct{})
	f := &fakeBroker{parts: 1, stall: stall}
	p := fakeProducer(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Publish(ctx, kafka.Message{Topic: "t", Value: []byte("lost")}), context.DeadlineExceeded)

	f.mu.Lock()
	f.stall = nil
	f.mu.Unlock()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	require.NoError(t, p.Publish(ctx2, kafka.Message{Topic: "t", Value: []byte("next")}))
	assert.Equal(t, []string{"t/next"}, f.log())
}
