package latebind_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callstate"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/latebind"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
)

type published struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (p *published) Publish(_ context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *published) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.msgs)
}

// redriver is a Redriver over a Redis of its own, and what it works with.
type redriver struct {
	*latebind.Redriver
	rdb   *redis.Client
	store *mapping.Store
	pub   *published
	trace *trace.Store
	state *callstate.Redis
}

func newRedriver(t *testing.T) redriver {
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	x := redriver{rdb: rdb, store: mapping.NewStore(rdb, "t"), pub: &published{}, trace: trace.New(rdb, "t"), state: callstate.NewRedis(rdb, "t")}
	x.Redriver = &latebind.Redriver{State: x.state, Mappings: x.store, Trace: x.trace,
		Publisher: x.pub, Topics: kafkabus.DefaultTopics(), Log: zerolog.Nop()}
	return x
}

func TestRedrive(t *testing.T) {
	t.Parallel()
	x := newRedriver(t)
	ctx := t.Context()
	rdb, store, pub, tr, state := x.rdb, x.store, x.pub, x.trace, x.state
	x.Parking = &latebind.Parking{State: state, Publisher: pub, Topic: kafkabus.TopicParked}
	r := x.Redriver

	park := func(callID string, a *call.Agent) {
		l := call.Log{Tenant: "acme", CallID: callID, Direction: call.Incoming, Status: call.Answered, Agent: a, ReceivedAt: time.Now().UTC()}
		require.NoError(t, state.AddParked(ctx, &l))
	}
	park("c1", &call.Agent{ID: "a1"})
	park("c2", &call.Agent{Phone: "+918586848544"})
	park("c3", &call.Agent{ID: "a9"}) // stays unmapped
	park("c4", nil)                   // nothing to resolve it by

	n, err := r.Redrive(ctx, "acme")
	require.NoError(t, err)
	assert.Zero(t, n, "nobody is mapped yet")

	require.NoError(t, store.Put(ctx, "acme", call.Mapping{MyOperatorUserID: "a1", CRMUserID: "101", Phones: []string{"+918586848544"},
		Source: call.MappingManual, Status: call.MappingActive}))
	n, err = r.Redrive(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the calls of the agent mapped now, found by id and by phone")
	require.Equal(t, 2, pub.count())
	keys := []string{string(pub.msgs[0].Key), string(pub.msgs[1].Key)}
	assert.ElementsMatch(t, []string{"acme:c1", "acme:c2"}, keys, "same key as the call's other events")
	assert.Equal(t, kafkabus.TopicLog, pub.msgs[0].Topic)
	var l call.Log
	require.NoError(t, json.Unmarshal(pub.msgs[0].Value, &l))
	assert.Nil(t, l.Owner, "the writer resolves the owner when it consumes the call")
	got, err := tr.Get(ctx, "acme", "c1")
	require.NoError(t, err)
	require.NotEmpty(t, got.Stages)
	assert.Equal(t, trace.StageReattributed, got.Stages[len(got.Stages)-1].Stage)

	// Not re-published again while the writer is on it.
	n, err = r.Redrive(ctx, "acme")
	require.NoError(t, err)
	assert.Zero(t, n)

	// A call already written by another path only loses its parking.
	require.NoError(t, store.Put(ctx, "acme", call.Mapping{MyOperatorUserID: "a9", CRMUserID: "109", Source: call.MappingManual, Status: call.MappingActive}))
	lease, _, err := state.Claim(ctx, "acme", "c3", time.Minute)
	require.NoError(t, err)
	require.NoError(t, state.Save(ctx, lease, callwriter.State{Status: callwriter.StatusWritten, RecordID: "rec-1"}, true))
	before := pub.count()
	n, err = r.Redrive(ctx, "acme")
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.False(t, rdb.HExists(ctx, state.Keys().Parked("acme"), "c3").Val())
	require.Equal(t, before+1, pub.count(), "its journal entry is tombstoned")
	tomb := pub.all()[before]
	assert.Equal(t, kafkabus.TopicParked, tomb.Topic)
	assert.Equal(t, "acme:c3", string(tomb.Key))
	assert.Nil(t, tomb.Value)

	// Bounded: after RedriveGap a call still parked goes again, RedriveMax times in all.
	now := time.Now()
	state.Now = func() time.Time { return now }
	var again int
	for range latebind.RedriveMax + 2 {
		now = now.Add(latebind.RedriveGap)
		n, err = r.Redrive(ctx, "acme")
		require.NoError(t, err)
		again += n
	}
	assert.Equal(t, 2*(latebind.RedriveMax-1), again, "c1 and c2 went RedriveMax times each, then no more")
}

// Trigger folds bursts of triggers (a sync creating many mappings) into few runs.
func TestRedriveTrigger(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	store := mapping.NewStore(env.Redis, env.Prefix)
	pub := &published{}
	state := callstate.NewRedis(env.Redis, env.Prefix)
	r := &latebind.Redriver{State: state, Mappings: store, Trace: trace.New(env.Redis, env.Prefix),
		Publisher: pub, Topics: kafkabus.DefaultTopics(), Log: zerolog.Nop()}
	store.OnChange(func(tenant, _ string, m *call.Mapping) {
		if m != nil && m.Status == call.MappingActive {
			r.Trigger(tenant)
		}
	})
	ctx := t.Context()
	for i := range 30 {
		id := string(rune('a'+i%26)) + "x"
		l := call.Log{Tenant: "acme", CallID: "c" + id, Direction: call.Incoming, Status: call.Missed, Agent: &call.Agent{ID: id}}
		require.NoError(t, state.AddParked(ctx, &l))
	}
	for i := range 26 {
		id := string(rune('a'+i)) + "x"
		require.NoError(t, store.Put(ctx, "acme", call.Mapping{MyOperatorUserID: id, CRMUserID: "1", Source: call.MappingEmailMatch, Status: call.MappingActive}))
	}
	testenv.Eventually(t, 10*time.Second, "every parked call of a mapped agent re-published", func() bool { return pub.count() == 26 })
	r.Close() // waits for triggered runs; later triggers do nothing
	r.Trigger("acme")
	r.Close()
	assert.Equal(t, 26, pub.count())
}

func (p *published) all() []kafka.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]kafka.Message(nil), p.msgs...)
}

// A parked call is written once anyone owns it: an agent any of its versions named
// (an afterCall by user id, its v2 summary by uuid), or — set up after it was parked —
// its department's owner or the tenant's fallback owner, even with no agent at all.
func TestRedriveOwnedLater(t *testing.T) {
	t.Parallel()
	x := newRedriver(t)
	ctx := t.Context()
	store, pub, tr, state := x.store, x.pub, x.trace, x.state
	acme := &tenant.Tenant{ID: "acme"}
	x.Tenants = tenant.NewRegistry(acme)
	r := x.Redriver
	park := func(l call.Log) {
		l.Tenant, l.Direction, l.Status, l.ReceivedAt = "acme", call.Incoming, call.Answered, time.Now().UTC()
		require.NoError(t, state.AddParked(ctx, &l))
	}
	park(call.Log{CallID: "both", Agent: &call.Agent{ID: "uuid-b5"}, EarlierAgents: []call.Agent{{ID: "a5"}}})
	park(call.Log{CallID: "sales", Department: "Sales"})
	park(call.Log{CallID: "nobody"})
	redriven := func() []string {
		var keys []string
		for _, m := range pub.all() {
			keys = append(keys, string(m.Key))
		}
		return keys
	}
	detail := func(callID string) string {
		got, err := tr.Get(ctx, "acme", callID)
		require.NoError(t, err)
		require.NotEmpty(t, got.Stages)
		return got.Stages[len(got.Stages)-1].Detail
	}

	n, err := r.Redrive(ctx, "acme")
	require.NoError(t, err)
	assert.Zero(t, n, "nobody owns any yet")

	require.NoError(t, store.Put(ctx, "acme", call.Mapping{MyOperatorUserID: "a5", CRMUserID: "105", Source: call.MappingManual, Status: call.MappingActive}))
	n, err = r.Redrive(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"acme:both"}, redriven(), "mapped by the user id its earlier version named")
	assert.Contains(t, detail("both"), "a mapping for agent a5 appeared")

	acme.Calls.Departments = map[string]string{"sales": "1002"}
	n, err = r.Redrive(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"acme:both", "acme:sales"}, redriven(), "the department's owner takes the sales call")
	assert.Contains(t, detail("sales"), "department owner 1002")

	acme.FallbackOwner = "1009"
	n, err = r.Redrive(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"acme:both", "acme:sales", "acme:nobody"}, redriven(), "the fallback owner takes a call that rang no agent")
	assert.Contains(t, detail("nobody"), "fallback owner 1009")
}
