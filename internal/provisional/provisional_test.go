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

// published records what the releaser published.
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
	trace *trace.Store
	pub   *published
	r     *Releaser
}

func newFixture(t *testing.T) *fixture {
	env := testenv.New(t)
	f := &fixture{trace: trace.New(env.Redis, env.Prefix), pub: &published{}}
	f.r = &Releaser{Wait: time.Minute, Publisher: f.pub, Topic: "log", Trace: f.trace, Log: zerolog.Nop()}
	return f
}

// held is the message ingest publishes to the held topic for a call.end.
func held(t *testing.T, callID string) kafka.Message {
	l := &call.Log{Tenant: "acme", CallID: callID, Source: "myoperator.v2", Direction: call.Incoming, Status: call.Answered,
		Agent: &call.Agent{Phone: "+918586848544"}, ReceivedAt: time.Now()}
	b, err := json.Marshal(l)
	require.NoError(t, err)
	return kafkabus.Event("held", call.Key("acme", callID), "calltrack/ingest", "acme", callID, b,
		kafka.Header{Key: kafkabus.HeaderReason, Value: []byte(ReasonSummaryMissing)})
}

func TestDueAtIsTheWaitAfterReceipt(t *testing.T) {
	f := newFixture(t)
	m := held(t, "c1")
	assert.WithinDuration(t, time.Now().Add(time.Minute), f.r.DueAt(m), 5*time.Second)
	assert.WithinDuration(t, time.Now().Add(DefaultWait), (&Releaser{}).DueAt(m), 5*time.Second)
	m.Headers = nil
	assert.True(t, f.r.DueAt(m).IsZero(), "no time: due at once")
}

// No call log came: the call.end's log is published to the log topic, traced.
func TestReleaseWithoutSummary(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	require.NoError(t, f.r.Handle(ctx, held(t, "c1")))
	require.Equal(t, []string{"c1"}, f.pub.calls())
	m := f.pub.msgs[0]
	assert.Equal(t, "log", m.Topic)
	assert.Equal(t, "acme:c1", string(m.Key))
	assert.Equal(t, ReasonSummaryMissing, kafkabus.Header(m, kafkabus.HeaderReason))
	var got call.Log
	require.NoError(t, json.Unmarshal(m.Value, &got))
	assert.Equal(t, "+918586848544", got.Agent.Phone)
	tr, err := f.trace.Get(ctx, "acme", "c1")
	require.NoError(t, err)
	assert.Equal(t, trace.StatusPublished, tr.Status)
}

// A call log on its way (spooled, published, written...) drops the call.end; a log
// that was only received — its publish may have failed — does not.
func TestLogSeen(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	rec := func(id, stage, kind string) {
		require.NoError(t, f.trace.Record(ctx, "acme", id, trace.Update{Stage: trace.Stage{Stage: stage, Kind: kind}}))
	}
	rec("received-only", trace.StatusReceived, "log")
	rec("spooled", trace.StatusReceived, "log")
	rec("spooled", stageSpooled, "log")
	rec("published", trace.StatusPublished, "log")
	rec("written", trace.StatusWritten, "log")
	// Stages of other kinds, or of the hold itself, are no call log.
	rec("live-only", trace.StatusPublished, "live")
	rec("live-only", StageHeld, "log")
	rec("live-only", "duplicate_ignored", "log")
	for _, id := range []string{"received-only", "spooled", "published", "written", "live-only", "no-trace"} {
		require.NoError(t, f.r.Handle(ctx, held(t, id)))
	}
	assert.Equal(t, []string{"received-only", "live-only", "no-trace"}, f.pub.calls())
	tr, err := f.trace.Get(ctx, "acme", "published")
	require.NoError(t, err)
	assert.Equal(t, StageDropped, tr.Stages[len(tr.Stages)-1].Stage)
}

// A trace's status counts as its stages do: a reader that does not show a stage (one
// of another version's layout) still sees a published call log.
func TestLogSeenByStatus(t *testing.T) {
	for status, want := range map[string]bool{
		trace.StatusReceived: false, trace.StatusPublished: true, trace.StatusWritten: true,
		trace.StatusUnattributed: true, trace.StatusRetrying: true, trace.StatusDeadLettered: true,
	} {
		assert.Equal(t, want, LogSeen(&trace.Trace{Status: status}), status)
	}
}

// Kafka refusing is an error: the consumer tries the message again, never commits past it.
func TestPublishFailureIsAnError(t *testing.T) {
	f := newFixture(t)
	f.pub.fail = errors.New("kafka down")
	require.Error(t, f.r.Handle(t.Context(), held(t, "c1")))
	f.pub.fail = nil
	require.NoError(t, f.r.Handle(t.Context(), held(t, "c1")))
	assert.Equal(t, []string{"c1"}, f.pub.calls())
}
