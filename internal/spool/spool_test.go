package spool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

// fakeKafka acknowledges or refuses publishes, as a broker that is up or down.
type fakeKafka struct {
	mu    sync.Mutex
	down  bool
	block chan struct{} // when set, a publish waits for it (or its context)
	got   []kafka.Message
}

func (f *fakeKafka) Publish(ctx context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	block, down := f.block, f.down
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if down {
		return errors.New("kafka: dial tcp: connection refused")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, msgs...)
	return nil
}

func (f *fakeKafka) setDown(v bool) { f.mu.Lock(); f.down = v; f.mu.Unlock() }

func (f *fakeKafka) values() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.got {
		out = append(out, string(m.Value))
	}
	return out
}

func msg(i int) kafka.Message {
	return kafka.Message{Topic: "calltrack.call.log.v1", Key: []byte(fmt.Sprintf("acme:c%d", i)), Value: []byte(fmt.Sprintf("call-%d", i)),
		Headers: []kafka.Header{{Key: "tenant", Value: []byte("acme")}}, Time: time.Unix(1700000000, 0)}
}

func open(t *testing.T, dir string, max int64) *Spool {
	t.Helper()
	s, err := Open(dir, Options{MaxBytes: max})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Kafka answers: nothing is spooled. Kafka down: the call is spooled and answered;
// later calls follow it into the spool (order); once Kafka is back the drainer
// forwards them in order and empties the spool.
func TestSpoolWhileKafkaIsDownThenDrainInOrder(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), 0)
	k := &fakeKafka{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, s)
	p := &Publisher{Kafka: k, Spool: s, Timeout: 200 * time.Millisecond, Metrics: m, Log: zerolog.Nop()}

	spooled, err := p.Deliver(ctx, msg(0))
	require.NoError(t, err)
	assert.False(t, spooled)

	k.setDown(true)
	for i := 1; i <= 5; i++ {
		spooled, err := p.Deliver(ctx, msg(i))
		require.NoError(t, err)
		assert.True(t, spooled, "call %d", i)
	}
	assert.Equal(t, uint64(5), s.Stats().Entries)
	k.setDown(false)
	// Not drained yet: a call now still goes behind the spooled ones.
	spooled, err = p.Deliver(ctx, msg(6))
	require.NoError(t, err)
	assert.True(t, spooled, "the spool is not empty: the call queues behind it")

	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &Drainer{Spool: s, Kafka: k, Metrics: m, Log: zerolog.Nop()}
	go func() { _ = d.Run(dctx) }()
	testenv.Eventually(t, 5*time.Second, "spool drained", s.Empty)
	assert.Equal(t, []string{"call-0", "call-1", "call-2", "call-3", "call-4", "call-5", "call-6"}, k.values())
	assert.Equal(t, 6.0, testutil.ToFloat64(m.Drained))
	assert.Equal(t, 0, testutil.CollectAndCount(m.Refused))

	spooled, err = p.Deliver(ctx, msg(7))
	require.NoError(t, err)
	assert.False(t, spooled, "drained: straight to Kafka again")
}

// A process that started while Kafka was down creates its topics before it drains:
// until it can, nothing is forwarded and Err says why (readiness reports Kafka
// unreachable, not "draining"); once it can, the spool drains in order.
func TestDrainerPreparesBeforeDraining(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	k := &fakeKafka{}
	require.NoError(t, s.Append(context.Background(), []kafka.Message{msg(1)}))
	require.NoError(t, s.Append(context.Background(), []kafka.Message{msg(2)}))
	var mu sync.Mutex
	prepareErr := errors.New("kafka: create topics: dial tcp: connection refused")
	tries := 0
	d := &Drainer{Spool: s, Kafka: k, Log: zerolog.Nop(), Prepare: func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		tries++
		return prepareErr
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	testenv.Eventually(t, 5*time.Second, "the failed preparation is the drainer's error", func() bool {
		return errors.Is(d.Err(), prepareErr)
	})
	assert.Empty(t, k.values(), "nothing forwarded before the topics exist")
	assert.Equal(t, uint64(2), s.Stats().Entries)

	mu.Lock()
	prepareErr = nil
	mu.Unlock()
	testenv.Eventually(t, 10*time.Second, "drained once prepared", s.Empty)
	assert.Equal(t, []string{"call-1", "call-2"}, k.values())
	assert.NoError(t, d.Err())
	mu.Lock()
	assert.GreaterOrEqual(t, tries, 2)
	mu.Unlock()
}

// A publish that does not finish within the timeout is spooled: the answer does not
// wait for a hanging broker.
func TestSlowKafkaIsBoundedByTheTimeout(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	k := &fakeKafka{block: make(chan struct{})}
	p := &Publisher{Kafka: k, Spool: s, Timeout: 100 * time.Millisecond, Log: zerolog.Nop()}
	start := time.Now()
	spooled, err := p.Deliver(context.Background(), msg(1))
	require.NoError(t, err)
	assert.True(t, spooled)
	assert.Less(t, time.Since(start), 2*time.Second)
}

// Entries survive the process: a spool opened again holds them, and drains them.
// Nothing is removed before Kafka acknowledged it.
func TestSpoolSurvivesRestartAndRemovesOnlyAfterAck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	k := &fakeKafka{down: true}
	p := &Publisher{Kafka: k, Spool: s, Timeout: 50 * time.Millisecond, Log: zerolog.Nop()}
	for i := 0; i < 3; i++ {
		_, err := p.Deliver(ctx, msg(i), msg(100+i))
		require.NoError(t, err)
	}
	d := &Drainer{Spool: s, Kafka: k, Log: zerolog.Nop()}
	n, err := d.Drain(ctx)
	assert.Error(t, err, "kafka is down")
	assert.Zero(t, n)
	require.Equal(t, uint64(3), s.Stats().Entries, "a refused publish removes nothing")
	require.NoError(t, s.Close())

	s2 := open(t, dir, 0)
	st := s2.Stats()
	assert.Equal(t, uint64(3), st.Entries)
	assert.False(t, st.Oldest.IsZero())
	assert.Positive(t, st.Bytes)
	k.setDown(false)
	n, err = (&Drainer{Spool: s2, Kafka: k, Batch: 2, Log: zerolog.Nop()}).Drain(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, []string{"call-0", "call-100", "call-1", "call-101", "call-2", "call-102"}, k.values())
	got := k.got[0]
	assert.Equal(t, "acme:c0", string(got.Key))
	assert.Equal(t, "acme", string(got.Headers[0].Value))
	assert.True(t, s2.Empty())

	// Emptied, closed and opened again: still empty, and appends continue.
	require.NoError(t, s2.Close())
	s3 := open(t, dir, 0)
	assert.True(t, s3.Empty())
	require.NoError(t, s3.Append(ctx, []kafka.Message{msg(9)}))
	assert.Equal(t, uint64(1), s3.Stats().Entries)
}

// A full spool refuses with ErrFull, and says so before a delivery is tried.
func TestFullSpoolRefuses(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), 4<<10)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, s)
	p := &Publisher{Kafka: &fakeKafka{down: true}, Spool: s, Timeout: 10 * time.Millisecond, Metrics: m, Log: zerolog.Nop()}
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = p.Deliver(ctx, msg(i))
	}
	require.ErrorIs(t, err, ErrFull)
	assert.ErrorIs(t, s.CanTake(), ErrFull)
	assert.LessOrEqual(t, s.Stats().Bytes, int64(4<<10))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.Refused.WithLabelValues("full")))
}

// Concurrent deliveries share fsyncs and none is lost.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), 0)
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, s.Append(ctx, []kafka.Message{msg(i)}))
		}()
	}
	wg.Wait()
	assert.Equal(t, uint64(200), s.Stats().Entries)
	k := &fakeKafka{}
	n, err := (&Drainer{Spool: s, Kafka: k, Batch: 64, Log: zerolog.Nop()}).Drain(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, n)
	assert.Len(t, k.values(), 200)
}

// flakyKafka refuses its first `fails` publishes, then acknowledges (fails < 0: never).
type flakyKafka struct {
	fakeKafka
	fails int
	tries int
}

func (k *flakyKafka) Publish(ctx context.Context, msgs ...kafka.Message) error {
	k.mu.Lock()
	k.tries++
	k.down = k.fails < 0 || k.tries <= k.fails
	k.mu.Unlock()
	return k.fakeKafka.Publish(ctx, msgs...)
}

// DrainAll (the drain on the way out) does not give up at Kafka's first refusal: with
// Kafka refusing 4 times it forwards everything, in order, well before its deadline;
// with Kafka refusing for good it returns when its context ends, the spool intact.
func TestDrainAllRetriesUntilEmptyOrDeadline(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	for i := range 5 {
		require.NoError(t, s.Append(context.Background(), []kafka.Message{msg(i)}))
	}
	k := &flakyKafka{fails: 4}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	n, err := (&Drainer{Spool: s, Kafka: k, Batch: 2, Log: zerolog.Nop()}).DrainAll(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.True(t, s.Empty())
	assert.Equal(t, []string{"call-0", "call-1", "call-2", "call-3", "call-4"}, k.values())
	assert.Equal(t, 4+3, k.tries, "4 refused, then 3 batches")
	assert.Less(t, time.Since(start), 5*time.Second)

	require.NoError(t, s.Append(context.Background(), []kafka.Message{msg(9)}))
	never := &flakyKafka{fails: -1}
	ctx, cancel = context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start = time.Now()
	n, err = (&Drainer{Spool: s, Kafka: never, Log: zerolog.Nop()}).DrainAll(ctx)
	took := time.Since(start)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "connection refused", "the last drain's error")
	assert.Zero(t, n)
	assert.GreaterOrEqual(t, took, 650*time.Millisecond, "it retried until the deadline")
	assert.Less(t, took, 3*time.Second, "and returned when it came")
	assert.Greater(t, never.tries, 2, "more than one try")
	assert.Equal(t, uint64(1), s.Stats().Entries, "nothing removed")
}
