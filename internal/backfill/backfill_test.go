package backfill_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/backfill"
	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
)

// fakeSearch is MyOperator's call log: hits by start time, newest first; fail makes
// the next calls fail with the given errors, one each.
type fakeSearch struct {
	mu    sync.Mutex
	calls []hitAt
	fail  []error
	asked []moapi.SearchQuery
}

type hitAt struct {
	start time.Time
	raw   json.RawMessage
}

func (f *fakeSearch) add(start time.Time, id string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw := fmt.Sprintf(`{"_id":"log-%s","_source":{"caller_number":"+919711636496","start_time":%d,"end_time":%d,"event":1,"status":%d,`+
		`"additional_parameters":[{"ky":"ui","vl":"%s"}],"log_details":[{"_ds":"ANSWER","action":"received","received_by":[{"user_id":"agent-1","name":"Sumit"}]}]}}`,
		id, start.Unix(), start.Unix()+30, status, id)
	f.calls = append([]hitAt{{start, json.RawMessage(raw)}}, f.calls...)
}

func (f *fakeSearch) Search(_ context.Context, q moapi.SearchQuery) (moapi.SearchPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, q)
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return moapi.SearchPage{}, err
	}
	var in []json.RawMessage
	for _, c := range f.calls {
		if !c.start.Before(q.From) && !c.start.After(q.To) {
			in = append(in, c.raw)
		}
	}
	lo := min(q.Offset, len(in))
	hi := min(lo+q.PageSize, len(in))
	return moapi.SearchPage{Total: len(in), Hits: in[lo:hi]}, nil
}

// fakeTraces keeps traces in memory.
type fakeTraces struct {
	mu sync.Mutex
	by map[string]*trace.Trace
}

func (f *fakeTraces) Get(_ context.Context, tenant, id string) (*trace.Trace, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.by[tenant+"/"+id]
	if !ok {
		return nil, trace.ErrNotFound
	}
	c := *t
	return &c, nil
}

func (f *fakeTraces) Record(_ context.Context, tenant, callID string, u trace.Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.by[tenant+"/"+callID]
	if !ok {
		t = &trace.Trace{Tenant: tenant, CallID: callID}
		f.by[tenant+"/"+callID] = t
	}
	if u.Status != "" {
		t.Status = u.Status
	}
	t.Stages = append(t.Stages, u.Stage)
	return nil
}

// fakeOnce is idempotency.Store's contract in memory.
type fakeOnce struct {
	mu   sync.Mutex
	done map[string]bool
	busy map[string]bool
}

func (f *fakeOnce) Exec(ctx context.Context, key string, fn func(context.Context) (string, error)) (string, bool, error) {
	f.mu.Lock()
	if f.done[key] {
		f.mu.Unlock()
		return "published", false, nil
	}
	if f.busy[key] {
		f.mu.Unlock()
		return "", false, idempotency.ErrInProgress
	}
	f.busy[key] = true
	f.mu.Unlock()
	res, err := fn(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.busy, key)
	if err == nil {
		f.done[key] = true
	}
	return res, true, err
}

type fakeKafka struct {
	mu   sync.Mutex
	msgs []kafka.Message
	err  error
}

func (f *fakeKafka) Publish(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.msgs = append(f.msgs, msgs...)
	return nil
}

func (f *fakeKafka) on(topic string) []kafka.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kafka.Message
	for _, m := range f.msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

type world struct {
	search  *fakeSearch
	traces  *fakeTraces
	once    *fakeOnce
	kafka   *fakeKafka
	rdb     redis.UniversalClient
	mr      *miniredis.Miniredis
	metrics *backfill.Metrics
	now     time.Time
	tenants *tenant.Registry
}

func newWorld(t *testing.T) *world {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return &world{search: &fakeSearch{}, traces: &fakeTraces{by: map[string]*trace.Trace{}},
		once: &fakeOnce{done: map[string]bool{}, busy: map[string]bool{}}, kafka: &fakeKafka{}, rdb: rdb, mr: mr,
		metrics: backfill.NewMetrics(prometheus.NewRegistry()), now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		tenants: tenant.NewRegistry(&tenant.Tenant{ID: "acme", MyOperatorKey: "tok"}, &tenant.Tenant{ID: "notoken"})}
}

var topics = kafkabus.DefaultTopics()

// service is one replica's backfill over the shared world.
func (w *world) service() *backfill.Service {
	return &backfill.Service{Tenants: w.tenants, Traces: w.traces, Once: w.once, Publisher: w.kafka, Topics: topics,
		Searchers: func(t *tenant.Tenant) (backfill.Searcher, error) { return w.search, nil },
		Redis:     w.rdb, Prefix: "ct", Metrics: w.metrics, Log: zerolog.Nop(), Now: func() time.Time { return w.now },
		RetryWait: time.Millisecond}
}

func (w *world) published(t *testing.T) []call.Log {
	t.Helper()
	var out []call.Log
	for _, m := range w.kafka.on(topics.Log) {
		var l call.Log
		require.NoError(t, json.Unmarshal(m.Value, &l))
		out = append(out, l)
	}
	return out
}

func ids(ls []call.Log) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.CallID)
	}
	return out
}

func TestRunPublishesWhatCalltrackNeverSaw(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := t.Context()
	for i, id := range []string{"new", "published", "written", "received-only", "live-only", "dead"} {
		w.search.add(w.now.Add(-time.Duration(i+1)*time.Minute), id, 1)
	}
	// What calltrack saw of them.
	rec := func(id string, u trace.Update) { require.NoError(t, w.traces.Record(ctx, "acme", id, u)) }
	rec("published", trace.Update{Stage: trace.Stage{Stage: trace.StatusPublished, Kind: "log"}, Status: trace.StatusPublished})
	rec("written", trace.Update{Stage: trace.Stage{Stage: trace.StatusWritten, Kind: "log"}, Status: trace.StatusWritten})
	// Received, but its publish failed: not seen (MyOperator may have given up on it).
	rec("received-only", trace.Update{Stage: trace.Stage{Stage: trace.StatusReceived, Kind: "log"}, Status: trace.StatusReceived})
	// Only the inCall came: the call log never did.
	rec("live-only", trace.Update{Stage: trace.Stage{Stage: trace.StatusPublished, Kind: "live"}})
	rec("dead", trace.Update{Stage: trace.Stage{Stage: trace.StatusDeadLettered, Kind: "log"}, Status: trace.StatusDeadLettered})
	// An unreadable hit is kept, not lost.
	w.search.calls = append(w.search.calls, hitAt{w.now.Add(-30 * time.Minute), json.RawMessage(`{"_id":"bad","_source":{"event":7}}`)})

	r, err := w.service().Run(ctx, "acme", backfill.Options{Since: w.now.Add(-time.Hour), Trigger: backfill.TriggerCLI})
	require.NoError(t, err)
	assert.Equal(t, 6, r.Found)
	assert.Equal(t, 3, r.Known)
	assert.Equal(t, 3, r.Published)
	assert.Equal(t, 1, r.Unreadable)
	assert.ElementsMatch(t, []string{"new", "received-only", "live-only"}, r.Calls)
	got := w.published(t)
	assert.ElementsMatch(t, []string{"new", "received-only", "live-only"}, ids(got))
	for _, l := range got {
		assert.Equal(t, "myoperator.backfill", l.Source)
		assert.True(t, l.OwnerUnresolved, "the writer resolves the owner")
		assert.Nil(t, l.Owner)
		require.NotNil(t, l.Agent)
		assert.Equal(t, "agent-1", l.Agent.ID)
	}
	for _, m := range w.kafka.on(topics.Log) {
		id := kafkabus.Header(m, kafkabus.HeaderCallID)
		assert.Equal(t, call.Key("acme", id), string(m.Key), "keyed as ingest keys the call's events")
		assert.Equal(t, "acme", kafkabus.Header(m, kafkabus.HeaderTenant))
	}
	rej := w.kafka.on(topics.Rejected)
	require.Len(t, rej, 1)
	assert.Equal(t, "unreadable_search_hit", kafkabus.Header(rej[0], kafkabus.HeaderReason))

	tr, err := w.traces.Get(ctx, "acme", "new")
	require.NoError(t, err)
	assert.Equal(t, trace.StatusPublished, tr.Status)
	require.GreaterOrEqual(t, len(tr.Stages), 2)
	assert.Equal(t, []string{trace.StatusReceived, backfill.StageBackfilled}, []string{tr.Stages[0].Stage, tr.Stages[0].Detail},
		"first, recorded before the publish: the writer's stages cannot come before it")
	assert.Equal(t, trace.StatusPublished, tr.Stages[1].Stage)

	assert.Equal(t, 3.0, testutil.ToFloat64(w.metrics.Calls.WithLabelValues("acme", "published")))
	assert.Equal(t, 6.0, testutil.ToFloat64(w.metrics.Calls.WithLabelValues("acme", "found")))
	assert.Equal(t, 3.0, testutil.ToFloat64(w.metrics.Calls.WithLabelValues("acme", "known")))
	assert.Equal(t, float64(w.now.Unix()), testutil.ToFloat64(w.metrics.LastSuccess.WithLabelValues("acme")))

	// Again: everything is known now.
	r, err = w.service().Run(ctx, "acme", backfill.Options{Since: w.now.Add(-time.Hour), Trigger: backfill.TriggerCLI})
	require.NoError(t, err)
	assert.Equal(t, 6, r.Known)
	assert.Zero(t, r.Published)
	assert.Len(t, w.published(t), 3)

	last, err := w.service().LastReport(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, 6, last.Known)
}

// Two replicas at once, and runs whose traces were lost: each call is published once.
func TestRunOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for i := range 50 {
		w.search.add(w.now.Add(-time.Duration(i+1)*time.Minute), fmt.Sprintf("c%02d", i), 2)
	}
	var wg sync.WaitGroup
	reports := make([]*backfill.Report, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = w.service().Run(t.Context(), "acme", backfill.Options{Since: w.now.Add(-2 * time.Hour), Wait: 10 * time.Second})
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	assert.Equal(t, 50, reports[0].Published+reports[1].Published)
	assert.Len(t, w.published(t), 50)

	// The traces are gone (e.g. expired); the claims still hold.
	w.traces.by = map[string]*trace.Trace{}
	r, err := w.service().Run(t.Context(), "acme", backfill.Options{Since: w.now.Add(-2 * time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, 50, r.Known)
	assert.Len(t, w.published(t), 50)
}

func TestRunBusy(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	require.NoError(t, w.rdb.Set(t.Context(), "ct:backfill:{acme}:lock", "someone", time.Minute).Err())
	_, err := w.service().Run(t.Context(), "acme", backfill.Options{Since: w.now.Add(-time.Hour), Trigger: backfill.TriggerAdmin})
	require.ErrorIs(t, err, backfill.ErrBusy)
	assert.Equal(t, 1.0, testutil.ToFloat64(w.metrics.Runs.WithLabelValues("acme", "admin", "busy")))
	// A dry run writes nothing, so it does not wait for the lock.
	_, err = w.service().Run(t.Context(), "acme", backfill.Options{Since: w.now.Add(-time.Hour), DryRun: true})
	require.NoError(t, err)
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.search.add(w.now.Add(-10*time.Minute), "new", 1)
	w.search.add(w.now.Add(-20*time.Minute), "old", 1)
	require.NoError(t, w.traces.Record(t.Context(), "acme", "old", trace.Update{Stage: trace.Stage{Stage: trace.StatusWritten, Kind: "log"}, Status: trace.StatusWritten}))
	r, err := w.service().Run(t.Context(), "acme", backfill.Options{Since: w.now.Add(-time.Hour), DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, 2, r.Found)
	assert.Equal(t, 1, r.Known)
	assert.Equal(t, 1, r.WouldPublish)
	assert.Zero(t, r.Published)
	assert.Equal(t, []string{"new"}, r.Calls)
	assert.Empty(t, w.kafka.msgs)
	_, err = w.traces.Get(t.Context(), "acme", "new")
	assert.ErrorIs(t, err, trace.ErrNotFound, "no trace written")
	assert.Zero(t, testutil.ToFloat64(w.metrics.Calls.WithLabelValues("acme", "found")), "dry runs are not counted")
}

func TestRunPagesAndRetries(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for i := range 250 {
		w.search.add(w.now.Add(-time.Duration(i+1)*10*time.Second), fmt.Sprintf("c%03d", i), 1)
	}
	// MyOperator says 429 first, then a 502: both are retried.
	w.search.fail = []error{
		&moapi.Error{Op: "search", Status: http.StatusTooManyRequests, RetryAfter: time.Second},
		&moapi.Error{Op: "search", Status: http.StatusBadGateway},
	}
	r, err := w.service().Run(t.Context(), "acme", backfill.Options{Since: w.now.Add(-time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, 250, r.Published)
	assert.Equal(t, 3, r.Pages)
	require.Len(t, w.search.asked, 5)
	assert.Equal(t, []int{0, 0, 0, 100, 200}, []int{w.search.asked[0].Offset, w.search.asked[1].Offset, w.search.asked[2].Offset,
		w.search.asked[3].Offset, w.search.asked[4].Offset})
	assert.Equal(t, w.now, w.search.asked[0].To, "until defaults to now")
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.search.add(w.now.Add(-10*time.Minute), "a", 1)
	ctx := t.Context()

	w.search.fail = []error{&moapi.Error{Op: "moapi: search call logs", Status: 400, Message: "This not an authorized request", Permanent: true}}
	r, err := w.service().Run(ctx, "acme", backfill.Options{Since: w.now.Add(-time.Hour), Trigger: backfill.TriggerAdmin})
	require.ErrorIs(t, err, backfill.ErrUpstream)
	assert.Contains(t, r.Error, "This not an authorized request")
	assert.Equal(t, 1.0, testutil.ToFloat64(w.metrics.Errors.WithLabelValues("acme", "search")))
	assert.Equal(t, 1.0, testutil.ToFloat64(w.metrics.Runs.WithLabelValues("acme", "admin", "failed")))

	// Kafka down: the call is not claimed, the next run publishes it.
	w.kafka.err = errors.New("kafka: no leader")
	_, err = w.service().Run(ctx, "acme", backfill.Options{Since: w.now.Add(-time.Hour)})
	require.Error(t, err)
	w.kafka.err = nil
	r, err = w.service().Run(ctx, "acme", backfill.Options{Since: w.now.Add(-time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, 1, r.Published)

	for _, tc := range []struct {
		name   string
		tenant string
		o      backfill.Options
		want   error
	}{
		{"unknown tenant", "nope", backfill.Options{Since: w.now.Add(-time.Hour)}, backfill.ErrUnknownTenant},
		{"no token", "notoken", backfill.Options{Since: w.now.Add(-time.Hour)}, backfill.ErrNotConfigured},
		{"no since", "acme", backfill.Options{}, backfill.ErrBadWindow},
		{"since after until", "acme", backfill.Options{Since: w.now.Add(-time.Hour), Until: w.now.Add(-2 * time.Hour)}, backfill.ErrBadWindow},
		{"older than 7 days", "acme", backfill.Options{Since: w.now.Add(-8 * 24 * time.Hour)}, backfill.ErrBadWindow},
	} {
		_, err := w.service().Run(ctx, tc.tenant, tc.o)
		assert.ErrorIs(t, err, tc.want, tc.name)
	}
}

// "At most 7 days back" takes 7 days: a relative since is computed a moment before the
// run reads now (the admin API, then Service.Run), and still passes; a minute more does not.
func TestWindowAtMostSevenDays(t *testing.T) {
	t.Parallel()
	asked := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		since string
		ok    bool
	}{{"7d", true}, {"168h", true}, {"6d23h59m", true}, {"7d1m", false}, {"8d", false}} {
		since, err := replay.ParseTime(tc.since, asked)
		require.NoError(t, err, tc.since)
		for _, later := range []time.Duration{0, time.Millisecond, 2 * time.Second} {
			_, _, err := backfill.Window(since, time.Time{}, asked.Add(later))
			if tc.ok {
				assert.NoError(t, err, "%s checked %v after it was read", tc.since, later)
			} else {
				assert.ErrorIs(t, err, backfill.ErrBadWindow, "%s checked %v after it was read", tc.since, later)
			}
		}
	}
}

func TestSeen(t *testing.T) {
	t.Parallel()
	st := func(stage, kind string) trace.Stage { return trace.Stage{Stage: stage, Kind: kind} }
	for _, tc := range []struct {
		name string
		tr   *trace.Trace
		want bool
	}{
		{"no trace", nil, false},
		{"received only", &trace.Trace{Status: trace.StatusReceived, Stages: []trace.Stage{st("received", "log")}}, false},
		{"held v2 call.end", &trace.Trace{Status: trace.StatusReceived, Stages: []trace.Stage{st("provisional_held", "log")}}, false},
		{"live only", &trace.Trace{Status: trace.StatusReceived, Stages: []trace.Stage{st("received", "live"), st("published", "live")}}, false},
		{"published", &trace.Trace{Status: trace.StatusPublished, Stages: []trace.Stage{st("received", "log"), st("published", "log")}}, true},
		{"unattributed", &trace.Trace{Status: trace.StatusUnattributed}, true},
		{"retrying", &trace.Trace{Status: trace.StatusRetrying}, true},
		{"dead-lettered", &trace.Trace{Status: trace.StatusDeadLettered}, true},
		{"written", &trace.Trace{Status: trace.StatusWritten}, true},
		{"released call.end", &trace.Trace{Status: trace.StatusReceived, Stages: []trace.Stage{st("provisional_held", "log"), st("published", "log")}}, true},
	} {
		assert.Equal(t, tc.want, backfill.Seen(tc.tr), tc.name)
	}
}
