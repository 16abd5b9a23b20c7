package redisbatch_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/redisbatch"
	"github.com/calltrack/calltrack/internal/testenv"
)

// pipelines counts the pipelines of SETs a client sends.
type pipelines struct{ n atomic.Int64 }

func (c *pipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (c *pipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *pipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if cmds[0].Name() == "set" { // not a new connection's set-up (hello, client setinfo)
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// held queues a write that holds the batcher's sender until release is called, so the
// writes added meanwhile wait in the queue.
func held(t *testing.T, b *redisbatch.Batcher, set func(p redis.Pipeliner)) (release func()) {
	gate, taken := make(chan struct{}), make(chan struct{})
	require.True(t, b.Add(func(p redis.Pipeliner) { close(taken); <-gate; set(p) }))
	<-taken
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release
}

// Writes queued while a batch is out go together in the next pipeline, and every one
// is in Redis once Flush returns.
func TestWritesQueuedMeanwhileGoInOnePipeline(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	sent := &pipelines{}
	env.Redis.AddHook(sent)
	b := redisbatch.New(env.Redis, redisbatch.Options{})
	defer b.Close(ctx)
	key := func(i int) string { return fmt.Sprintf("%s:k%d", env.Prefix, i) }
	release := held(t, b, func(p redis.Pipeliner) { p.Set(ctx, key(0), 0, time.Minute) })
	const n = 200
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Go(func() { assert.True(t, b.Add(func(p redis.Pipeliner) { p.Set(ctx, key(i), i, time.Minute) })) })
	}
	wg.Wait()
	release()
	require.NoError(t, b.Flush(ctx))
	for i := range n {
		v, err := env.Redis.Get(ctx, key(i)).Int()
		require.NoError(t, err, "write %d", i)
		assert.Equal(t, i, v)
	}
	assert.EqualValues(t, 2, sent.n.Load(), "the held write's pipeline, then one for the other %d", n-1)
}

// A full queue refuses (the caller writes itself); Flush gives up when its context ends.
func TestFullQueueRefuses(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	b := redisbatch.New(env.Redis, redisbatch.Options{MaxQueued: 3})
	defer b.Close(ctx)
	release := held(t, b, func(p redis.Pipeliner) {})
	for range 3 {
		require.True(t, b.Add(func(p redis.Pipeliner) {}))
	}
	assert.False(t, b.Add(func(p redis.Pipeliner) {}), "a fourth while three wait")
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, b.Flush(short), context.DeadlineExceeded)
	release()
	require.NoError(t, b.Flush(ctx))
	assert.True(t, b.Add(func(p redis.Pipeliner) {}), "room again")
}

// Close writes what is queued, then refuses.
func TestCloseWritesWhatIsQueued(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	b := redisbatch.New(env.Redis, redisbatch.Options{})
	key := env.Prefix + ":last"
	release := held(t, b, func(p redis.Pipeliner) {})
	require.True(t, b.Add(func(p redis.Pipeliner) { p.Set(ctx, key, "x", time.Minute) }))
	closed := make(chan error, 1)
	go func() { closed <- b.Close(ctx) }()
	release()
	require.NoError(t, <-closed)
	assert.Equal(t, "x", env.Redis.Get(ctx, key).Val())
	assert.False(t, b.Add(func(p redis.Pipeliner) {}))
}

// A write Redis does not take is reported, and Flush does not wait for it forever.
func TestFailedWriteIsReported(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	var mu sync.Mutex
	var failed []int
	b := redisbatch.New(rdb, redisbatch.Options{Timeout: time.Second, Failed: func(err error, commands int) {
		mu.Lock()
		defer mu.Unlock()
		failed = append(failed, commands)
	}})
	defer b.Close(context.Background())
	require.True(t, b.Add(func(p redis.Pipeliner) {
		p.Set(context.Background(), "k", 1, 0)
		p.Set(context.Background(), "l", 1, 0)
	}))
	require.NoError(t, b.Flush(t.Context()))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int{2}, failed)
}

// A lookup that finds nothing is an answer, not a failure: a batch whose first command
// is a GET of a missing key is not reported (go-redis's Exec returns that redis.Nil),
// while a real error behind it still is.
func TestNothingFoundIsNotAFailure(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	for _, c := range []struct {
		name   string
		fn     func(p redis.Pipeliner)
		failed []string
	}{
		{"missing keys", func(p redis.Pipeliner) {
			p.Get(ctx, env.Prefix+":missing")
			p.HGet(ctx, env.Prefix+":missing-hash", "f")
			p.Set(ctx, env.Prefix+":k", 1, time.Minute)
		}, nil},
		{"missing key, then a wrong type", func(p redis.Pipeliner) {
			p.Get(ctx, env.Prefix+":missing")
			p.HGet(ctx, env.Prefix+":k", "f") // a string, not a hash
		}, []string{"WRONGTYPE"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var failed []string
			b := redisbatch.New(env.Redis, redisbatch.Options{Timeout: 5 * time.Second, Failed: func(err error, commands int) {
				mu.Lock()
				defer mu.Unlock()
				failed = append(failed, err.Error())
			}})
			defer b.Close(ctx)
			require.True(t, b.Add(c.fn))
			require.NoError(t, b.Flush(ctx))
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, failed, len(c.failed), "%v", failed)
			for i, want := range c.failed {
				assert.Contains(t, failed[i], want)
			}
		})
	}
}

// A write whose commands panic is reported; the others in its batch go through.
func TestPanickingWriteIsReported(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	var mu sync.Mutex
	var failures []string
	b := redisbatch.New(env.Redis, redisbatch.Options{Failed: func(err error, _ int) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, err.Error())
	}})
	defer b.Close(ctx)
	key := env.Prefix + ":after"
	release := held(t, b, func(p redis.Pipeliner) {})
	require.True(t, b.Add(func(p redis.Pipeliner) { panic("boom") }))
	require.True(t, b.Add(func(p redis.Pipeliner) { p.Set(ctx, key, "ok", time.Minute) }))
	release()
	require.NoError(t, b.Flush(ctx))
	assert.Equal(t, "ok", env.Redis.Get(ctx, key).Val())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, failures, 1)
	assert.Contains(t, failures[0], "boom")
}

// Callers waiting with Do read their own answers, from one pipeline for all who
// queued while a batch was out; a closed Batcher refuses with ErrNotQueued.
func TestDoAnswersEachCallerFromOnePipeline(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	sent := &pipelines{}
	env.Redis.AddHook(sent)
	b := redisbatch.New(env.Redis, redisbatch.Options{})
	key := func(i int) string { return fmt.Sprintf("%s:d%d", env.Prefix, i) }
	for i := range 50 {
		require.NoError(t, env.Redis.Set(ctx, key(i), i*10, time.Minute).Err())
	}
	sent.n.Store(0)
	release := held(t, b, func(p redis.Pipeliner) { p.Set(ctx, env.Prefix+":first", 1, time.Minute) })
	got := make([]int, 50)
	var wg sync.WaitGroup
	var queued atomic.Int64
	for i := range 50 {
		wg.Go(func() {
			var get *redis.StringCmd
			queued.Add(1)
			err := b.Do(ctx, func(p redis.Pipeliner) {
				p.Set(ctx, key(i)+":seen", 1, time.Minute)
				get = p.Get(ctx, key(i))
			})
			if assert.NoError(t, err) {
				got[i], _ = get.Int()
			}
		})
	}
	for queued.Load() < 50 {
		runtime.Gosched() // every caller queued behind the held batch
	}
	release()
	wg.Wait()
	for i, v := range got {
		assert.Equal(t, i*10, v, "caller %d's own answer", i)
	}
	assert.LessOrEqual(t, sent.n.Load(), int64(3), "the held batch, then the callers' in one or two")

	require.NoError(t, b.Close(ctx))
	assert.ErrorIs(t, b.Do(ctx, func(p redis.Pipeliner) {}), redisbatch.ErrNotQueued)
}

// Finish adds its commands once a batch, after the batch's writes and in their
// pipeline: what they collected (one RPUSH of every write's value here) is in Redis
// with them.
func TestFinishAddsWhatTheBatchsWritesCollected(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	list := env.Prefix + ":collected"
	var collected []any // only the batcher's goroutine touches it
	pushes := &rpushes{}
	env.Redis.AddHook(pushes)
	b := redisbatch.New(env.Redis, redisbatch.Options{Finish: func(p redis.Pipeliner) {
		if len(collected) > 0 {
			p.RPush(ctx, list, collected...)
			collected = collected[:0]
		}
	}})
	defer b.Close(ctx)
	release := held(t, b, func(p redis.Pipeliner) { collected = append(collected, "w0") })
	const n = 50
	for i := 1; i < n; i++ {
		require.True(t, b.Add(func(p redis.Pipeliner) { collected = append(collected, fmt.Sprintf("w%d", i)) }))
	}
	release()
	require.NoError(t, b.Flush(ctx))
	got, err := env.Redis.LRange(ctx, list, 0, -1).Result()
	require.NoError(t, err)
	assert.Len(t, got, n, "every write's value, once")
	assert.Equal(t, "w0", got[0])
	assert.EqualValues(t, 2, pushes.Load(), "one RPUSH a batch: the held write's, then the other 49's")
}

// rpushes counts the RPUSH commands a client sends.
type rpushes struct{ atomic.Int64 }

func (c *rpushes) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (c *rpushes) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *rpushes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c2 := range cmds {
			if c2.Name() == "rpush" {
				c.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}
