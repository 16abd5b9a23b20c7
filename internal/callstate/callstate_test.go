package callstate_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callstate"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/testenv"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// stores returns every implementation of callwriter.Store on one clock: the conformance
// suite runs against each.
func stores(t *testing.T) map[string]func(*clock) callwriter.Store {
	return map[string]func(*clock) callwriter.Store{
		"redis": func(c *clock) callwriter.Store {
			env := testenv.New(t)
			s := callstate.NewRedis(env.Redis, env.Prefix)
			s.Now = c.Now
			return s
		},
		"memory": func(c *clock) callwriter.Store {
			m := callstate.NewMemory()
			m.Now = c.Now
			return m
		},
	}
}

func TestStoreConformance(t *testing.T) {
	ctx := context.Background()
	logOf := func(id string) *call.Log {
		return &call.Log{Tenant: "acme", CallID: id, Direction: call.Incoming, Status: call.Answered,
			Owner: &call.Owner{CRMUserID: "1001"}, ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	}
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{now: time.Now().Truncate(time.Millisecond)}
			s := open(c)

			t.Run("a new call is claimed once at a time", func(t *testing.T) {
				l, st, err := s.Claim(ctx, "acme", "c1", time.Minute)
				require.NoError(t, err)
				assert.Equal(t, callwriter.StatusNew, st.Status)
				_, _, err = s.Claim(ctx, "acme", "c1", time.Minute)
				require.ErrorIs(t, err, callwriter.ErrBusy)
				require.NoError(t, s.Release(ctx, l))
				require.ErrorIs(t, s.Release(ctx, l), callwriter.ErrLeaseLost, "released already")
				l2, _, err := s.Claim(ctx, "acme", "c1", time.Minute)
				require.NoError(t, err, "free again once released")
				require.NoError(t, s.Release(ctx, l2))
			})

			t.Run("a written state round-trips and outlives its lease", func(t *testing.T) {
				l, _, err := s.Claim(ctx, "acme", "c2", time.Minute)
				require.NoError(t, err)
				want := callwriter.State{Status: callwriter.StatusWritten, RecordID: "rec-9", Log: logOf("c2")}
				require.NoError(t, s.Save(ctx, l, want, true))
				l, got, err := s.Claim(ctx, "acme", "c2", time.Minute)
				require.NoError(t, err)
				assert.Equal(t, callwriter.StatusWritten, got.Status)
				assert.Equal(t, "rec-9", got.RecordID)
				require.NotNil(t, got.Log)
				assert.Equal(t, "1001", got.Log.Owner.CRMUserID)
				assert.True(t, got.Log.ReceivedAt.Equal(want.Log.ReceivedAt))
				assert.Nil(t, got.Pending)
				require.NoError(t, s.Release(ctx, l))
			})

			t.Run("a lapsed lease is taken over and its holder's saves are refused", func(t *testing.T) {
				a, _, err := s.Claim(ctx, "acme", "c3", 10*time.Second)
				require.NoError(t, err)
				c.advance(11 * time.Second)
				b, _, err := s.Claim(ctx, "acme", "c3", 10*time.Second)
				require.NoError(t, err, "lapsed")
				require.ErrorIs(t, s.Save(ctx, a, callwriter.State{Status: callwriter.StatusWritten, RecordID: "x"}, true), callwriter.ErrLeaseLost)
				require.ErrorIs(t, s.Release(ctx, a), callwriter.ErrLeaseLost)
				require.NoError(t, s.Save(ctx, b, callwriter.State{Pending: &call.RecordingEvent{Tenant: "acme", CallID: "c3", Disposition: "d"}}, true))
				b, st, err := s.Claim(ctx, "acme", "c3", 10*time.Second)
				require.NoError(t, err)
				require.NotNil(t, st.Pending)
				assert.Equal(t, "d", st.Pending.Disposition)
				require.NoError(t, s.Release(ctx, b))
			})

			t.Run("a create whose worker died turns unknown when its lease lapses", func(t *testing.T) {
				l, _, err := s.Claim(ctx, "acme", "c4", 10*time.Second)
				require.NoError(t, err)
				since := c.Now()
				require.NoError(t, s.Save(ctx, l, callwriter.State{Status: callwriter.StatusCreating, Log: logOf("c4"), Since: since}, false))
				_, _, err = s.Claim(ctx, "acme", "c4", 10*time.Second)
				require.ErrorIs(t, err, callwriter.ErrBusy, "the creating worker still holds it")
				c.advance(11 * time.Second)
				l, st, err := s.Claim(ctx, "acme", "c4", 10*time.Second)
				require.NoError(t, err)
				assert.Equal(t, callwriter.StatusUnknown, st.Status)
				assert.True(t, st.Since.Equal(since), "since %v, want %v", st.Since, since)
				require.NotNil(t, st.Log)
				require.NoError(t, s.Release(ctx, l))
				_, st, err = s.Claim(ctx, "acme", "c4", 10*time.Second)
				require.NoError(t, err)
				assert.Equal(t, callwriter.StatusUnknown, st.Status, "unknown stays until resolved")
			})

			t.Run("concurrent claims: exactly one wins", func(t *testing.T) {
				var won atomic.Int32
				var wg sync.WaitGroup
				for range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, _, err := s.Claim(ctx, "acme", "c5", time.Minute); err == nil {
							won.Add(1)
						}
					}()
				}
				wg.Wait()
				assert.Equal(t, int32(1), won.Load())
			})
		})
	}
}

func TestRedisEpoch(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t)
	s := callstate.NewRedis(env.Redis, env.Prefix)
	fresh := make(chan time.Time, 4)
	s.OnNewEpoch = func(e time.Time) { fresh <- e }

	_, ok, err := s.Epoch(ctx)
	require.NoError(t, err)
	require.False(t, ok, "no marker yet")
	// A new deployment: nothing was written before, no call needs a lookup.
	e, err := s.StartEpoch(ctx, time.Time{})
	require.NoError(t, err)
	assert.True(t, e.IsZero())
	<-fresh
	l, st, err := s.Claim(ctx, "acme", "c1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Release(ctx, l))
	assert.True(t, st.Epoch.IsZero())
	e, err = s.StartEpoch(ctx, time.Now())
	require.NoError(t, err)
	assert.True(t, e.IsZero(), "a marker in place is kept")

	// Redis loses its data while writers run: the next claim starts an epoch now.
	require.NoError(t, env.Redis.Del(ctx, s.Keys().Epoch(), s.Keys().Call("acme", "c1")).Err())
	before := time.Now().Add(-time.Millisecond)
	_, st, err = s.Claim(ctx, "acme", "c1", time.Minute)
	require.NoError(t, err)
	assert.True(t, st.Epoch.After(before), "epoch %v", st.Epoch)
	select {
	case e := <-fresh:
		assert.True(t, e.Equal(st.Epoch))
	case <-time.After(5 * time.Second):
		t.Fatal("OnNewEpoch not called for the new epoch")
	}
	e, ok, err = s.Epoch(ctx)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, e.Equal(st.Epoch))
}

func TestRedisKeepsNoEmptyHashAndExpiresStates(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t)
	s := callstate.NewRedis(env.Redis, env.Prefix)
	l, _, err := s.Claim(ctx, "acme", "c1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Release(ctx, l))
	n, err := env.Redis.Exists(ctx, s.Keys().Call("acme", "c1")).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "a claim released with nothing saved leaves no key")

	l, _, err = s.Claim(ctx, "acme", "c2", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, l, callwriter.State{Status: callwriter.StatusWritten, RecordID: "r"}, true))
	ttl, err := env.Redis.PTTL(ctx, s.Keys().Call("acme", "c2")).Result()
	require.NoError(t, err)
	assert.InDelta(t, callstate.StateTTL.Hours(), ttl.Hours(), 1)
	rec, written, err := s.Written(ctx, "acme", "c2")
	require.NoError(t, err)
	assert.True(t, written)
	assert.Equal(t, "r", rec)
}

func TestRedisRestoreParked(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t)
	s := callstate.NewRedis(env.Redis, env.Prefix)
	l, _, err := s.Claim(ctx, "acme", "written", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, l, callwriter.State{Status: callwriter.StatusWritten, RecordID: "r"}, true))

	logs := []*call.Log{{Tenant: "acme", CallID: "written"}, {Tenant: "acme", CallID: "p1"}, {Tenant: "beta", CallID: "p2"}}
	n, err := s.RestoreParked(ctx, logs)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the written call is not parked again")
	acmeParked, err := s.Parked(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, acmeParked, 1)
	assert.Equal(t, "p1", acmeParked[0].CallID)
	_, st, err := s.Claim(ctx, "acme", "p1", time.Minute)
	require.NoError(t, err)
	assert.True(t, st.Parked, "the call state knows it is parked, so writing it unparks it")
}

// Redis carries out a claim and its answer is lost on the way back: go-redis sends the
// claim again on a new connection, and that second run finds the first one's lease. It
// is the worker's own: the claim succeeds, instead of answering "busy" and leaving the
// call held by nobody until the lease lapses (2 minutes by default).
func TestRedisClaimWhoseAnswerWasLost(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t)
	proxy := testenv.NewProxy(t, env.RedisAddr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	s := callstate.NewRedis(rdb, env.Prefix)

	proxy.LoseAnswerTo("HGETALL") // in the claim script's text
	l, _, err := s.Claim(ctx, "acme", "lost-answer", time.Minute)
	require.Equal(t, 1, proxy.Cuts(), "the claim's answer was lost")
	require.NoError(t, err, "the retried claim is the worker's own")
	require.NoError(t, s.Save(ctx, l, callwriter.State{Status: callwriter.StatusWritten, RecordID: "r1"}, true), "the lease is the worker's")
	_, _, err = s.Claim(ctx, "acme", "lost-answer", time.Minute)
	require.NoError(t, err, "released: nobody holds the call")
}
