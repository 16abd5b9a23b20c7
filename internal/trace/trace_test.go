package trace

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

func TestTraceStatusNeverGoesBack(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	rec := func(stage, status string, u Update) {
		u.Stage.Stage, u.Status = stage, status
		require.NoError(t, s.Record(ctx, "acme", "n2.1.1", u))
	}
	rec(StatusReceived, StatusReceived, Update{LogID: "5f114f490dbe2437"})
	// A fast writer may write before ingest records "published".
	rec(StatusWritten, StatusWritten, Update{OwnerID: "1001", RecordID: "77"})
	rec(StatusPublished, StatusPublished, Update{})

	tr, err := s.Get(ctx, "acme", "n2.1.1")
	require.NoError(t, err)
	assert.Equal(t, StatusWritten, tr.Status)
	require.NotNil(t, tr.Owner)
	assert.Equal(t, "1001", tr.Owner.CRMUserID)
	assert.Equal(t, "77", tr.CRM.RecordID)
	assert.Len(t, tr.Stages, 3)

	byLog, err := s.Get(ctx, "acme", "5f114f490dbe2437")
	require.NoError(t, err)
	assert.Equal(t, "n2.1.1", byLog.CallID, "the afterCall log id finds the call")

	_, err = s.Get(ctx, "acme", "nope")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.Get(ctx, "other", "n2.1.1")
	assert.ErrorIs(t, err, ErrNotFound, "traces are per tenant")
}

// An early status (ingest's) shows until a writer's comes, and never after it — in the
// trace and in the calls list alike.
func TestEarlyStatusNeverHidesAWritersStatus(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		statuses []string
		want     string
	}{
		{"received", []string{StatusReceived}, StatusReceived},
		{"received then published", []string{StatusReceived, StatusPublished}, StatusPublished},
		{"published after retrying", []string{StatusRetrying, StatusPublished}, StatusRetrying},
		{"received after dead-lettered", []string{StatusDeadLettered, StatusReceived}, StatusDeadLettered},
		{"written after retrying", []string{StatusReceived, StatusRetrying, StatusWritten}, StatusWritten},
		{"retrying after written", []string{StatusWritten, StatusRetrying, StatusPublished}, StatusWritten},
		{"a stage without status", []string{StatusPublished, ""}, StatusPublished},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "call-" + tc.name
			for _, st := range tc.statuses {
				require.NoError(t, s.Record(ctx, "early", id, Update{Stage: Stage{Stage: "s"}, Status: st, Agent: "u1"}))
			}
			tr, err := s.Get(ctx, "early", id)
			require.NoError(t, err)
			assert.Equal(t, tc.want, tr.Status)
			entries, _, err := s.List(ctx, "early", ListOptions{Limit: 100})
			require.NoError(t, err)
			var listed string
			for _, e := range entries {
				if e.CallID == id {
					listed = e.Status
				}
			}
			assert.Equal(t, tc.want, listed, "the calls list shows the same status")
		})
	}
}

// A trace written before early statuses had their field (an older replica, or before
// an upgrade) keeps its early status under "status": a newer early one still shows,
// and a writer's status under "status" still wins.
func TestEarlyStatusOverAnOlderVersionsTrace(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	for _, tc := range []struct{ old, next, want string }{
		{StatusReceived, StatusPublished, StatusPublished},
		{StatusPublished, StatusReceived, StatusReceived},
		{StatusWritten, StatusPublished, StatusWritten},
		{StatusRetrying, StatusReceived, StatusRetrying},
	} {
		id := "legacy-" + tc.old + "-" + tc.next
		require.NoError(t, env.Redis.HSet(ctx, s.hashKey("acme", id), "tenant", "acme", "status", tc.old).Err())
		require.NoError(t, s.Record(ctx, "acme", id, Update{Stage: Stage{Stage: tc.next}, Status: tc.next}))
		tr, err := s.Get(ctx, "acme", id)
		require.NoError(t, err)
		assert.Equal(t, tc.want, tr.Status, "%s, then %s", tc.old, tc.next)
	}
}

// A stage is stored as encoding/json encodes it, byte for byte; a time it refuses is
// refused the same way.
func TestStageJSONIsJSONMarshal(t *testing.T) {
	require.Equal(t, 4, reflect.TypeFor[Stage]().NumField(), "a field added to Stage: add it to appendJSON and to this table")
	at := time.Date(2026, 12, 1, 17, 4, 5, 123_000_000, time.FixedZone("IST", 5*3600+1800))
	for _, s := range []Stage{{}, {Stage: "received", At: at}, {Stage: "x<&>\"", At: at, Kind: "log", Detail: "placed by \u2028 c2c-1"},
		{Stage: "late", At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		want, wantErr := json.Marshal(&s)
		got, err := s.appendJSON(nil)
		if wantErr != nil {
			assert.EqualError(t, err, wantErr.Error())
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
	}
}
