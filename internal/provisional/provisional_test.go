package provisional

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
)

// published records what the loop published.
type published struct {
	mu   sync.Mutex
	msgs []kafka.Message
	fail error
}

func (p *published) Publish(_ context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *published) calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.msgs {
		out = append(out, kafkabus.Header(m, kafkabus.HeaderCallID))
	}
	return out
}

type fixture struct {
	store *Store
	trace *trace.Store
	pub   *published
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	env := testenv.New(t)
	return &fixture{store: New(env.Redis, env.Prefix), trace: trace.New(env.Redis, env.Prefix), pub: &published{},
		now: time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)}
}

func (f *fixture) loop() *Loop {
	return &Loop{Store: f.store, Wait: time.Minute, Publisher: f.pub, Topic: "log", Trace: f.trace, Log: zerolog.Nop(),
		Now: func() time.Time { return f.now }}
}

func endLog(callID string, at time.Time) *call.Log {
	return &call.Log{Tenant: "acme", CallID: callID, Source: "myoperator.v2", Direction: call.Incoming, Status: call.Answered,
		Agent: &call.Agent{Phone: "+918586848544"}, ReceivedAt: at}
}

func TestReleaseAfterWait(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	require.NoError(t, f.store.Hold(ctx, endLog("c1", f.now)))
	require.NoError(t, f.store.Hold(ctx, endLog("c2", f.now.Add(30*time.Second))))
	l := f.loop()

	n, err := l.Tick(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is due before the wait")

	f.now = f.now.Add(time.Minute)
	n, err = l.Tick(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"c1"}, f.pub.calls())
	var got call.Log
	require.NoError(t, json.Unmarshal(f.pub.msgs[0].Value, &got))
	assert.Equal(t, "+918586848544", got.Agent.Phone)
	assert.Equal(t, "acme:c1", string(f.pub.msgs[0].Key))
	assert.Equal(t, "log", f.pub.msgs[0].Topic)

	tr, err := f.trace.Get(ctx, "acme", "c1")
	require.NoError(t, err)
	assert.Equal(t, trace.StatusPublished, tr.Status)
	held, err := f.store.Held(ctx, "acme", "c1")
	require.NoError(t, err)
	assert.Nil(t, held, "released calls are forgotten")

	f.now = f.now.Add(time.Hour)
	n, err = l.Tick(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"c1", "c2"}, f.pub.calls(), "each call once")
	count, err := f.store.Count(ctx)
	require.NoError(t, err)
	assert.Zero(t, count)
}

func TestLogSeenDropsTheEnd(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, id := range []string{"summary", "aftercall-written", "cancelled"} {
		require.NoError(t, f.store.Hold(ctx, endLog(id, f.now)))
	}
	// A summary was received (not yet published); an afterCall was written; the third
	// was cancelled by ingest.
	require.NoError(t, f.trace.Record(ctx, "acme", "summary", trace.Update{Stage: trace.Stage{Stage: trace.StatusReceived, Kind: "log"}, Status: trace.StatusReceived}))
	require.NoError(t, f.trace.Record(ctx, "acme", "aftercall-written", trace.Update{Stage: trace.Stage{Stage: trace.StatusWritten, Kind: "log"}, Status: trace.StatusWritten}))
	require.NoError(t, f.store.Cancel(ctx, "acme", "cancelled"))
	// Stages of other kinds, or of the hold itself, are no call log.
	require.NoError(t, f.store.Hold(ctx, endLog("live-only", f.now)))
	require.NoError(t, f.trace.Record(ctx, "acme", "live-only", trace.Update{Stage: trace.Stage{Stage: trace.StatusReceived, Kind: "live"}}))
	require.NoError(t, f.trace.Record(ctx, "acme", "live-only", trace.Update{Stage: trace.Stage{Stage: StageHeld, Kind: "log"}}))
	require.NoError(t, f.trace.Record(ctx, "acme", "live-only", trace.Update{Stage: trace.Stage{Stage: "duplicate_ignored", Kind: "log"}}))

	f.now = f.now.Add(2 * time.Minute)
	n, err := f.loop().Tick(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"live-only"}, f.pub.calls())
	count, err := f.store.Count(ctx)
	require.NoError(t, err)
	assert.Zero(t, count, "dropped ends are forgotten")
	tr, err := f.trace.Get(ctx, "acme", "summary")
	require.NoError(t, err)
	assert.Equal(t, StageDropped, tr.Stages[len(tr.Stages)-1].Stage)
}

// A failed publish keeps the call claimed for the lease, then it is tried again.
func TestPublishFailureRetriesAfterLease(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	require.NoError(t, f.store.Hold(ctx, endLog("c1", f.now)))
	l := f.loop()
	l.Lease = 10 * time.Second
	f.pub.fail = errors.New("kafka down")
	f.now = f.now.Add(time.Minute)
	n, err := l.Tick(ctx)
	require.Error(t, err)
	assert.Zero(t, n)

	f.pub.fail = nil
	n, err = l.Tick(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "still claimed")
	f.now = f.now.Add(11 * time.Second)
	n, err = l.Tick(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

// Several replicas ticking at once publish each call once.
func TestReplicasPublishOnce(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const calls = 40
	for i := range calls {
		require.NoError(t, f.store.Hold(ctx, endLog("c"+string(rune('A'+i)), f.now)))
	}
	f.now = f.now.Add(time.Minute)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			l := f.loop()
			l.Batch = 3
			_, err := l.Tick(ctx)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	got := f.pub.calls()
	assert.Len(t, got, calls)
	seen := map[string]bool{}
	for _, c := range got {
		assert.False(t, seen[c], "%s published twice", c)
		seen[c] = true
	}
}

// Holding a call again keeps the first receive time: the wait runs from the first call.end.
func TestHoldKeepsFirstTime(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	require.NoError(t, f.store.Hold(ctx, endLog("c1", f.now)))
	require.NoError(t, f.store.Hold(ctx, endLog("c1", f.now.Add(50*time.Second))))
	f.now = f.now.Add(time.Minute)
	n, err := f.loop().Tick(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestInterval(t *testing.T) {
	assert.Equal(t, 5*time.Second, (&Loop{}).Interval(), "default wait 5m: every 5 s")
	assert.Equal(t, 250*time.Millisecond, (&Loop{Wait: time.Second}).Interval())
	assert.LessOrEqual(t, (&Loop{Wait: 20 * time.Millisecond}).Interval(), 10*time.Millisecond)
}

// Run stops when its context ends.
func TestRunStops(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	l := f.loop()
	l.Now = nil
	l.Wait = 40 * time.Millisecond
	go func() { done <- l.Run(ctx) }()
	require.NoError(t, f.store.Hold(t.Context(), endLog("c1", time.Now())))
	testenv.Eventually(t, 5*time.Second, "released by the running loop", func() bool { return len(f.pub.calls()) == 1 })
	cancel()
	require.NoError(t, <-done)
}
