package ingest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/redisbatch"
	"github.com/calltrack/calltrack/internal/spool"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// downKafka never acknowledges: a broker that is down.
type downKafka struct{}

func (downKafka) Publish(ctx context.Context, _ ...kafka.Message) error {
	<-ctx.Done()
	return ctx.Err()
}

// deadRedis is a client of an address where nothing listens.
func deadRedis(t *testing.T) redis.UniversalClient {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func server(t *testing.T, rdb redis.UniversalClient, prefix string, pub Publisher) *httptest.Server {
	srv, _ := serverHandler(t, rdb, prefix, pub)
	return srv
}

func serverHandler(t *testing.T, rdb redis.UniversalClient, prefix string, pub Publisher) (*httptest.Server, *Handler) {
	m := metrics.New()
	h := &Handler{Tenants: tenant.NewRegistry(&tenant.Tenant{ID: "acme", WebhookToken: "tok"}),
		Redis: rdb, Mappings: mapping.NewStore(rdb, prefix), Publisher: pub, Topics: kafkabus.DefaultTopics(),
		Dedupe: idempotency.New(rdb, prefix), Trace: trace.New(rdb, prefix), Metrics: m, Log: zerolog.Nop(),
		RedisBudget: 200 * time.Millisecond, After: redisbatch.New(rdb, redisbatch.Options{}),
		Before: redisbatch.New(rdb, redisbatch.Options{Timeout: 200 * time.Millisecond})} // as serve runs it
	t.Cleanup(func() { _ = h.After.Close(context.Background()); _ = h.Before.Close(context.Background()) })
	e := web.New(zerolog.Nop(), m, nil)
	h.Register(e)
	(&V2{Handler: h}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, h
}

func postAfterCall(t *testing.T, srv *httptest.Server, payload string) (int, map[string]any, time.Duration) {
	start := time.Now()
	res, err := http.PostForm(srv.URL+"/webhooks/myoperator/acme/aftercall?token=tok", url.Values{"myoperator": {payload}})
	require.NoError(t, err)
	defer res.Body.Close()
	took := time.Since(start)
	b, _ := io.ReadAll(res.Body)
	var body map[string]any
	require.NoError(t, json.Unmarshal(b, &body), "%s", b)
	return res.StatusCode, body, took
}

// Redis down: the call is accepted, quickly, and goes out with its owner unresolved
// for the writer to resolve; a redelivery is not deduplicated (the writer is).
func TestRedisDownStillAccepts(t *testing.T) {
	pub := &fakePublisher{}
	srv := server(t, deadRedis(t), "x", pub)
	for i := 0; i < 2; i++ {
		code, body, took := postAfterCall(t, srv, sample(t))
		require.Equal(t, http.StatusOK, code, "%v", body)
		assert.Equal(t, "accepted", body["status"])
		assert.Less(t, took, 2*time.Second, "a dead Redis does not stall the answer")
	}
	require.Len(t, pub.msgs, 4, "call log + recording, twice: no dedupe without Redis")
	var l call.Log
	require.NoError(t, json.Unmarshal(pub.msgs[0].Value, &l))
	assert.True(t, l.OwnerUnresolved)
	assert.Nil(t, l.Owner)
	assert.False(t, l.Internal)
}

// hangingRedis is a client of a Redis that takes connections and never answers.
func hangingRedis(t *testing.T) redis.UniversalClient {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read
			mu.Unlock()
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1})
	t.Cleanup(func() {
		_ = rdb.Close()
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return rdb
}

// A Redis that hangs: the answer comes once the Redis budget is spent, and the call
// goes out with its owner unresolved (the writer resolves it) — not unattributed,
// as if the lookup had found no mapping.
func TestHangingRedisLeavesTheOwnerUnresolved(t *testing.T) {
	pub := &fakePublisher{}
	srv := server(t, hangingRedis(t), "x", pub)
	code, body, took := postAfterCall(t, srv, sample(t))
	require.Equal(t, http.StatusOK, code, "%v", body)
	assert.Equal(t, "accepted", body["status"])
	assert.Less(t, took, 2*time.Second, "a hanging Redis does not stall the answer past its budget")
	require.NotEmpty(t, pub.msgs)
	var l call.Log
	require.NoError(t, json.Unmarshal(pub.msgs[0].Value, &l))
	assert.True(t, l.OwnerUnresolved, "the writer resolves the owner")
	assert.Nil(t, l.Owner)
}

// With Redis up the owner is resolved at ingest and the flag is not set.
func TestRedisUpResolvesOwner(t *testing.T) {
	env := testenv.New(t)
	ms := mapping.NewStore(env.Redis, env.Prefix)
	require.NoError(t, ms.Put(t.Context(), "acme", call.Mapping{MyOperatorUserID: "5cd40f6556f2f124", CRMUserID: "1001", Source: call.MappingManual, Status: call.MappingActive}))
	pub := &fakePublisher{}
	srv := server(t, env.Redis, env.Prefix, pub)
	code, body, _ := postAfterCall(t, srv, sample(t))
	require.Equal(t, http.StatusOK, code, "%v", body)
	var l call.Log
	require.NoError(t, json.Unmarshal(pub.msgs[0].Value, &l))
	assert.False(t, l.OwnerUnresolved)
	require.NotNil(t, l.Owner)
	assert.Equal(t, "1001", l.Owner.CRMUserID)
}

// Kafka down: the call is answered 200 with "spooled": true once it is on disk, and
// its trace says so; a full spool answers 503 spool_full.
func TestKafkaDownSpoolsThenFullSpoolRefuses(t *testing.T) {
	env := testenv.New(t)
	sp, err := spool.Open(t.TempDir(), spool.Options{MaxBytes: 12 << 10})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sp.Close() })
	pub := &spool.Publisher{Kafka: downKafka{}, Spool: sp, Timeout: 100 * time.Millisecond, Log: zerolog.Nop()}
	srv := server(t, env.Redis, env.Prefix, pub)
	code, body, _ := postAfterCall(t, srv, sample(t))
	require.Equal(t, http.StatusOK, code, "%v", body)
	assert.Equal(t, true, body["spooled"])
	assert.Equal(t, uint64(1), sp.Stats().Entries)
	testenv.Eventually(t, 5*time.Second, "the trace says spooled", func() bool { // written after the answer
		tr, err := trace.New(env.Redis, env.Prefix).Get(t.Context(), "acme", body["call_id"].(string))
		return err == nil && len(tr.Stages) > 0 && tr.Stages[len(tr.Stages)-1].Stage == StageSpooled
	})

	// Fill the spool with distinct calls until it refuses.
	var last map[string]any
	for i := 0; i < 50; i++ {
		p := uniqueCall(t, i)
		code, last, _ = postAfterCall(t, srv, p)
		if code != http.StatusOK {
			break
		}
	}
	require.Equal(t, http.StatusServiceUnavailable, code)
	errBody, _ := last["error"].(map[string]any)
	assert.Equal(t, "spool_full", errBody["code"])
	assert.Contains(t, errBody["message"], "spool is full")
}

// uniqueCall is the sample afterCall with its own call UID and log id.
func uniqueCall(t *testing.T, i int) string {
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(sample(t)), &v))
	v["_ai"] = "5f114f490dbe" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	v["_pm"] = []any{map[string]any{"ky": "ui", "vl": "uid-" + v["_ai"].(string)}}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// roundTrips counts the Redis round trips a client makes (a pipeline is one).
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n != "hello" && n != "client" { // a new connection's set-up
			r.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if n := cmds[0].Name(); n != "hello" && n != "client" { // not a new connection's set-up
			r.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// An accepted afterCall costs two Redis round trips (issue 14: at most 3): claim +
// owner lookup before the publish; finish + trace after it, in the background
// (redisbatch), with other webhooks' when there are any.
func TestTwoRedisRoundTripsPerWebhook(t *testing.T) {
	env := testenv.New(t)
	ms := mapping.NewStore(env.Redis, env.Prefix)
	require.NoError(t, ms.Put(t.Context(), "acme", call.Mapping{MyOperatorUserID: "5cd40f6556f2f124", CRMUserID: "1001", Source: call.MappingManual, Status: call.MappingActive}))
	rdb := redis.NewClient(&redis.Options{Addr: env.RedisAddr})
	t.Cleanup(func() { _ = rdb.Close() })
	rt := &roundTrips{}
	rdb.AddHook(rt)
	pub := &fakePublisher{}
	srv := server(t, rdb, env.Prefix, pub)
	require.NoError(t, rdb.Ping(t.Context()).Err()) // the connection's set-up is not the webhook's
	rt.n.Store(0)
	code, body, _ := postAfterCall(t, srv, sample(t))
	require.Equal(t, http.StatusOK, code, "%v", body)
	var l call.Log
	require.NoError(t, json.Unmarshal(pub.msgs[0].Value, &l))
	require.NotNil(t, l.Owner)
	assert.Equal(t, "1001", l.Owner.CRMUserID)
	var tr *trace.Trace
	testenv.Eventually(t, 5*time.Second, "the trace's stages written", func() bool {
		var err error
		tr, err = trace.New(env.Redis, env.Prefix).Get(t.Context(), "acme", body["call_id"].(string))
		return err == nil && len(tr.Stages) == 2
	})
	assert.EqualValues(t, 2, rt.n.Load())
	assert.Equal(t, []string{"received", "published"}, []string{tr.Stages[0].Stage, tr.Stages[1].Stage})
	assert.Equal(t, trace.StatusPublished, tr.Status)

	rt.n.Store(0)
	code, body, _ = postAfterCall(t, srv, sample(t))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "duplicate", body["status"])
}

// claims releases a held batch once a client has sent its n-th dedupe claim (SET NX).
type claims struct {
	n       atomic.Int64
	at      int64
	release func()
}

func (c *claims) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (c *claims) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *claims) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if a := cmd.Args(); cmd.Name() == "set" && len(a) > 3 && a[len(a)-1] == "nx" && c.n.Add(1) == c.at {
				c.release()
			}
		}
		return err
	}
}

// A redelivery that comes before its first delivery's finish is written (it waits in
// the background batch) is told "duplicate", not "in progress", and publishes nothing.
func TestRedeliveryBeforeItsFinishIsWrittenIsADuplicate(t *testing.T) {
	env := testenv.New(t)
	pub := &fakePublisher{}
	srv, h := serverHandler(t, env.Redis, env.Prefix, pub)
	gate, taken := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	require.True(t, h.After.Add(func(redis.Pipeliner) { close(taken); <-gate }))
	<-taken // the batcher is held: what the first delivery queues waits
	env.Redis.AddHook(&claims{at: 2, release: release})

	payload := sample(t)
	code, body, _ := postAfterCall(t, srv, payload)
	require.Equal(t, http.StatusOK, code, "%v", body)
	require.Equal(t, "accepted", body["status"])
	events := len(pub.msgs)
	code, body, _ = postAfterCall(t, srv, payload) // its claim finds the first's still pending
	require.Equal(t, http.StatusOK, code, "%v", body)
	assert.Equal(t, "duplicate", body["status"])
	assert.Len(t, pub.msgs, events, "no second event")
}

// A body that cannot be read is the sender's failure (400), not one of the 5xx the
// CalltrackWebhook5xx alert counts; one over 1 MiB is too_large.
func TestBodyOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{web.Errorf(http.StatusRequestEntityTooLarge, "payload_too_large", "x"), "too_large"},
		{web.Errorf(http.StatusBadRequest, "bad_request", "x"), "unreadable"},
	} {
		assert.Equal(t, tc.want, bodyOutcome(tc.err), tc.err.Error())
	}
}
