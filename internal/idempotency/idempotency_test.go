package idempotency

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

func TestExecRunsOnceAndKeepsResult(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	var runs atomic.Int32
	fn := func(context.Context) (string, error) { runs.Add(1); return "rec-1", nil }
	var wg sync.WaitGroup
	results := make([]string, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				r, _, err := s.Exec(context.Background(), "k", fn)
				if errors.Is(err, ErrInProgress) {
					continue
				}
				require.NoError(t, err)
				results[i] = r
				return
			}
		}(i)
	}
	wg.Wait()
	assert.EqualValues(t, 1, runs.Load(), "fn ran once across concurrent callers")
	for _, r := range results {
		assert.Equal(t, "rec-1", r)
	}
	r, done, err := s.Done(context.Background(), "k")
	require.NoError(t, err)
	assert.True(t, done)
	assert.Equal(t, "rec-1", r)
}

func TestExecReleasesOnFailure(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	boom := errors.New("crm down")
	_, ran, err := s.Exec(context.Background(), "k", func(context.Context) (string, error) { return "", boom })
	assert.True(t, ran)
	assert.ErrorIs(t, err, boom)
	r, ran, err := s.Exec(context.Background(), "k", func(context.Context) (string, error) { return "rec-2", nil })
	require.NoError(t, err)
	assert.True(t, ran, "a failed action can run again")
	assert.Equal(t, "rec-2", r)
}

func TestClaimIsTwoPhase(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	pipelined := func(ctx context.Context, key string, ttl time.Duration) (int, error) {
		p := env.Redis.Pipeline()
		answer := s.ClaimPipe(ctx, p, key, ttl)
		_, _ = p.Exec(ctx)
		return answer()
	}
	for name, claim := range map[string]func(context.Context, string, time.Duration) (int, error){"Claim": s.Claim, "ClaimPipe": pipelined} {
		t.Run(name, func(t *testing.T) {
			key := "w-" + name
			state, err := claim(ctx, key, time.Minute)
			require.NoError(t, err)
			assert.Equal(t, Claimed, state)
			ttl := env.Redis.PTTL(ctx, s.Key(key)).Val()
			assert.True(t, ttl > 50*time.Second && ttl <= time.Minute, "the claim lapses after the pending TTL: %s", ttl)
			state, err = claim(ctx, key, time.Minute)
			require.NoError(t, err)
			assert.Equal(t, Pending, state, "a redelivery during the work is not told it is done")
			require.NoError(t, s.Release(ctx, key))
			state, err = claim(ctx, key, time.Minute)
			require.NoError(t, err)
			assert.Equal(t, Claimed, state, "a released claim lets the retry through")
			require.NoError(t, s.Finish(ctx, key, time.Hour))
			state, err = claim(ctx, key, time.Minute)
			require.NoError(t, err)
			assert.Equal(t, Finished, state)
			ttl = env.Redis.PTTL(ctx, s.Key(key)).Val()
			assert.True(t, ttl > 59*time.Minute, "a redelivery leaves the done marker as it was: %s", ttl)
		})
	}
}

func TestDoneReportsWorkInProgress(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _, _ = s.Exec(context.Background(), "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "rec", nil
		})
	}()
	<-started
	_, done, err := s.Done(context.Background(), "k")
	assert.ErrorIs(t, err, ErrInProgress)
	assert.False(t, done)
	close(release)
	testenv.Eventually(t, 5*time.Second, "done", func() bool {
		r, done, _ := s.Done(context.Background(), "k")
		return done && r == "rec"
	})
}

// When Redis refuses the done marker, the result is kept and recorded by the next Exec:
// the action is not run twice.
func TestUnrecordedResultIsNotRunTwice(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	s.ProcessingTTL = 200 * time.Millisecond
	var runs atomic.Int32
	_, ran, err := s.Exec(context.Background(), "k", func(context.Context) (string, error) {
		runs.Add(1)
		s.unrecorded.Store("k", "rec-9") // as if markDone had failed
		return "rec-9", nil
	})
	require.NoError(t, err)
	assert.True(t, ran)
	r, ran, err := s.Exec(context.Background(), "k", func(context.Context) (string, error) { runs.Add(1); return "again", nil })
	require.NoError(t, err)
	assert.False(t, ran)
	assert.Equal(t, "rec-9", r)
	assert.EqualValues(t, 1, runs.Load())
}
