package callpolicy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callpolicy"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
)

type fakeTrace struct{ stages []string }

func (f *fakeTrace) Record(_ context.Context, _, _ string, u trace.Update) error {
	f.stages = append(f.stages, u.Stage.Stage)
	return nil
}

func acme(action tenant.Action) *tenant.Tenant {
	return &tenant.Tenant{ID: "acme", Calls: tenant.CallPolicy{TaskDue: time.Hour,
		Actions: map[tenant.Category]tenant.Action{tenant.CategoryMissed: action}}}
}

func TestFollowUps(t *testing.T) {
	t.Parallel()
	missed := logAt(call.Incoming, call.Missed, time.Date(2026, 11, 30, 11, 0, 0, 0, ist))
	answered := logAt(call.Incoming, call.Answered, time.Date(2026, 11, 30, 11, 0, 0, 0, ist))
	lost := &crm.Error{Op: "create task", Unknown: true}
	for _, tc := range []struct {
		name    string
		t       *tenant.Tenant
		l       *call.Log
		next    []error
		runs    int
		tasks   int
		stages  []string
		lastErr error
	}{
		{name: "log_and_task: one task however often the call is redelivered", t: acme(tenant.ActionLogAndTask), l: missed, runs: 3, tasks: 1, stages: []string{"task_created"}},
		{name: "log: no task", t: acme(tenant.ActionLog), l: missed, runs: 2},
		{name: "answered calls get no task", t: acme(tenant.ActionLogAndTask), l: answered, runs: 1},
		{name: "a lost answer is settled by a lookup before anything is created again", t: acme(tenant.ActionLogAndTask), l: missed,
			next: []error{lost}, runs: 2, tasks: 1, stages: []string{"task_outcome_unknown"}, lastErr: callpolicy.ErrTaskSettling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ft := &fakeTasker{next: tc.next}
			tr := &fakeTrace{}
			store := &callpolicy.MemoryTaskStore{}
			f := &callpolicy.FollowUps{Store: store, Trace: tr, Tasks: callpolicy.Tasks{Settle: time.Hour},
				CRMs: func(*tenant.Tenant) (crm.Tasker, error) { return ft, nil }}
			var err error
			for range tc.runs {
				_, err = f.Ensure(context.Background(), tc.t, tc.l)
			}
			if tc.lastErr != nil {
				assert.True(t, errors.Is(err, tc.lastErr), "%v", err)
			} else {
				require.NoError(t, err)
			}
			assert.Len(t, ft.tasks, tc.tasks)
			assert.Equal(t, tc.stages, tr.stages)
		})
	}
}

func TestFollowUpsBusyAndStoreDown(t *testing.T) {
	t.Parallel()
	store := &callpolicy.MemoryTaskStore{}
	ft := &fakeTasker{}
	f := &callpolicy.FollowUps{Store: store, CRMs: func(*tenant.Tenant) (crm.Tasker, error) { return ft, nil }}
	l := logAt(call.Incoming, call.Missed, time.Date(2026, 11, 30, 11, 0, 0, 0, ist))
	tok, _, err := store.Claim(context.Background(), "acme", l.CallID, time.Minute)
	require.NoError(t, err)
	_, err = f.Ensure(context.Background(), acme(tenant.ActionLogAndTask), l)
	assert.ErrorIs(t, err, callpolicy.ErrBusy)
	require.NoError(t, store.Release(context.Background(), "acme", l.CallID, tok))
	store.Fail = errors.New("redis down")
	_, err = f.Ensure(context.Background(), acme(tenant.ActionLogAndTask), l)
	assert.Error(t, err)
	assert.Zero(t, ft.creates, "nothing is created without its state kept")
}

// The Redis store against a real Redis: leases exclude each other, a lapsed lease
// cannot save, state survives.
func TestRedisTaskStore(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	s := callpolicy.RedisTaskStore{Redis: env.Redis, Prefix: env.Prefix}
	ctx := context.Background()
	tok, st, err := s.Claim(ctx, "acme", "c1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, callpolicy.TaskNone, st.Status)
	_, _, err = s.Claim(ctx, "acme", "c1", time.Minute)
	assert.ErrorIs(t, err, callpolicy.ErrBusy)
	require.NoError(t, s.Save(ctx, "acme", "c1", tok, callpolicy.TaskState{Status: callpolicy.TaskCreated, ID: "t-1"}))
	assert.ErrorIs(t, s.Save(ctx, "acme", "c1", "not-the-token", callpolicy.TaskState{}), callpolicy.ErrBusy)
	require.NoError(t, s.Release(ctx, "acme", "c1", tok))
	tok, st, err = s.Claim(ctx, "acme", "c1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, callpolicy.TaskState{Status: callpolicy.TaskCreated, ID: "t-1"}, st)
	require.NoError(t, s.Release(ctx, "acme", "c1", tok))
}

// The claim's answer is lost after Redis carried it out: go-redis's own retry finds
// the worker's lease and takes it, rather than answering "busy" until it lapses.
func TestRedisTaskStoreClaimWhoseAnswerWasLost(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	proxy := testenv.NewProxy(t, env.RedisAddr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	s := callpolicy.RedisTaskStore{Redis: rdb, Prefix: env.Prefix}
	ctx := context.Background()

	// A first claim loads the script, so the cut answer is the claim's own (EVALSHA),
	// not a NOSCRIPT refusal of a command that never ran.
	warm, _, err := s.Claim(ctx, "acme", "warm-up", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Release(ctx, "acme", "warm-up", warm))
	proxy.LoseAnswerTo("task-lease:{acme:lost-answer}")
	tok, _, err := s.Claim(ctx, "acme", "lost-answer", time.Minute)
	require.Equal(t, 1, proxy.Cuts(), "the claim's answer was lost")
	require.NoError(t, err, "the retried claim is the worker's own")
	require.NoError(t, s.Save(ctx, "acme", "lost-answer", tok, callpolicy.TaskState{Status: callpolicy.TaskCreated, ID: "t-1"}))
	require.NoError(t, s.Release(ctx, "acme", "lost-answer", tok))
	tok, _, err = s.Claim(ctx, "acme", "lost-answer", time.Minute)
	require.NoError(t, err, "released: nobody holds the task")
	require.NoError(t, s.Release(ctx, "acme", "lost-answer", tok))
}
