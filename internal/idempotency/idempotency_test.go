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

func TestClaim(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	first, err := s.Claim(context.Background(), "w", time.Hour)
	require.NoError(t, err)
	assert.True(t, first)
	again, err := s.Claim(context.Background(), "w", time.Hour)
	require.NoError(t, err)
	assert.False(t, again)
	require.NoError(t, s.Release(context.Background(), "w"))
	after, err := s.Claim(context.Background(), "w", time.Hour)
	require.NoError(t, err)
	assert.True(t, after)
}
