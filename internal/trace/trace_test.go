package trace

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
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

// The trace shows the agent the call was attributed to (the writer's first write),
// whatever later events of the call report (a v2 summary, an afterCall amendment):
// the calls list and the call's page agree with the CRM owner. An event naming an
// agent when the attributed log named none shows, as the call has no other.
func TestAttributedAgentOutlastsLaterEvents(t *testing.T) {
	sumit := &call.Agent{ID: "5cd40f6556f2f124", Name: "Sumit"}
	ravi := &call.Agent{ID: "5cd40f6556f2f200", Name: "Ravi"}
	for _, tc := range []struct {
		name           string
		first, later   *call.Agent // what ingest's events report
		attributed     *call.Agent // the writer's
		want, wantName string
	}{
		{"a later event names another agent", sumit, ravi, sumit, sumit.ID, "Sumit"},
		{"a later event names none", sumit, nil, sumit, sumit.ID, "Sumit"},
		{"the attributed log named none, a later one does", nil, ravi, nil, ravi.ID, "Ravi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			s := New(env.Redis, env.Prefix)
			ctx := t.Context()
			ingest := func(a *call.Agent) { // as ingest records a call log's webhook
				u := Update{Stage: Stage{Kind: KindLog}, Call: &CallInfo{Direction: "incoming", Outcome: "answered", Duration: 39}}
				if a != nil {
					u.Agent, u.Call.AgentName = a.Label(), a.Name
				}
				received, published := u, u
				received.Stage.Stage, received.Status = StatusReceived, StatusReceived
				published.Stage.Stage, published.Status = StatusPublished, StatusPublished
				_, err := env.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
					return s.RecordPipe(ctx, p, nil, "acme", "n2.1.1", received, published)
				})
				require.NoError(t, err)
			}
			ingest(tc.first)
			require.NoError(t, s.Record(ctx, "acme", "n2.1.1", Update{Stage: Stage{Stage: StatusWritten, Kind: KindLog},
				Status: StatusWritten, OwnerID: "1001", RecordID: "77", Attributed: tc.attributed}))
			ingest(tc.later)

			tr, err := s.Get(ctx, "acme", "n2.1.1")
			require.NoError(t, err)
			assert.Equal(t, tc.want, tr.Agent, "the call's trace")
			calls, _, err := s.List(ctx, "acme", ListOptions{})
			require.NoError(t, err)
			require.Len(t, calls, 1)
			assert.Equal(t, tc.want, calls[0].Agent, "the calls list")
			assert.Equal(t, tc.wantName, calls[0].AgentName, "the calls list")
			byAgent, _, err := s.List(ctx, "acme", ListOptions{Agent: tc.want})
			require.NoError(t, err)
			assert.Len(t, byAgent, 1, "the list filtered by the agent shown")
		})
	}
}

// A call parked as an afterCall (agent by user id) and as its v2 summary (by uuid)
// keeps both ids, in whichever order they came, on the call's trace and in the calls
// list; a later park of the same kind replaces that kind's id only.
func TestParkedAgentKeepsEachKindOfID(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := t.Context()
	park := func(callID string, u Update) {
		u.Stage, u.Status = Stage{Stage: StatusUnattributed, Kind: KindLog}, StatusUnattributed
		require.NoError(t, s.Record(ctx, "acme", callID, u))
	}
	park("v1-first", Update{ParkedUserID: "5cd40f6556f2f124", Attributed: &call.Agent{ID: "5cd40f6556f2f124"}})
	park("v1-first", Update{ParkedUUID: "uuid-3f2a", Attributed: &call.Agent{ID: "uuid-3f2a"}})
	park("v2-first", Update{ParkedUUID: "uuid-3f2a"})
	park("v2-first", Update{ParkedUserID: "5cd40f6556f2f124"})
	park("v1-only", Update{ParkedUserID: "5cd40f6556f2f124"})
	park("v1-only", Update{ParkedUserID: "5cd40f6556f2f200"})
	park("none", Update{})

	both := &ParkedAgent{MyOperatorUserID: "5cd40f6556f2f124", MyOperatorUUID: "uuid-3f2a"}
	want := map[string]*ParkedAgent{"v1-first": both, "v2-first": both,
		"v1-only": {MyOperatorUserID: "5cd40f6556f2f200"}, "none": nil}
	for callID, w := range want {
		tr, err := s.Get(ctx, "acme", callID)
		require.NoError(t, err)
		assert.Equal(t, w, tr.ParkedAgent, callID)
	}
	calls, _, err := s.List(ctx, "acme", ListOptions{})
	require.NoError(t, err)
	require.Len(t, calls, len(want))
	for _, c := range calls {
		assert.Equal(t, want[c.CallID], c.ParkedAgent, "the calls list: %s", c.CallID)
	}
}
