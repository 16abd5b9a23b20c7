package myoperator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
)

func TestParseSearchHit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file       string
		callID     string
		logID      string
		dir        call.Direction
		status     call.Status
		agentID    string
		caller     string
		duration   int
		recording  *call.Recording
		department string
	}{
		{"search_answered.json", "n2.1596270949.2175190", "5f114f490dbe2437", call.Incoming, call.Answered, "5cd40f6556f2f124", "+919711636496", 39,
			&call.Recording{URL: "https://app.myoperator.co/audio/e673c2f4a1b94d37a9c1d0e2b3f4a5d0", FileName: "e673c2f4a1b94d37a9c1d0e2b3f4a5d0.mp3"}, "sales"},
		// Missed: the last agent rung.
		{"search_missed_two_legs.json", "n2.1700000000.1000001", "6a01b2c3d4e5f610", call.Incoming, call.Missed, "5cd40f6556f2f200", "+919711636496", 45, nil, "support"},
		// Outgoing: the agent who placed it.
		{"search_outgoing.json", "s1.1700001000.2000002", "6a01b2c3d4e5f611", call.Outgoing, call.Answered, "5cd40f6556f2f200", "+919811122233", 130,
			&call.Recording{URL: "https://app.myoperator.co/audio/0a1b2c3d4e5f60718293a4b5c6d7e8f9", FileName: "0a1b2c3d4e5f60718293a4b5c6d7e8f9.mp3"}, "sales"},
		// Transferred: the agent who answered last.
		{"search_transfer.json", "n2.1700003000.3000004", "6a01b2c3d4e5f613", call.Incoming, call.Answered, "5cd40f6556f2f200", "+919711636496", 300,
			&call.Recording{FileName: "1b2c3d4e5f60718293a4b5c6d7e8f90a.mp3"}, "sales"},
		// No ui: the hit's _id is the call id (as the afterCall's _ai is); strings and
		// double-encoded lists; no duration: end - start.
		{"search_no_ui_strings.json", "6a01b2c3d4e5f612", "6a01b2c3d4e5f612", call.Incoming, call.Answered, "5cd40f6556f2f124", "+919711636496", 40, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			l, err := ParseSearchHit("acme", readTestdata(t, tt.file), received)
			require.NoError(t, err)
			assert.Equal(t, SourceBackfill, l.Source)
			assert.Equal(t, tt.callID, l.CallID)
			assert.Equal(t, tt.logID, l.LogID)
			assert.Equal(t, tt.dir, l.Direction)
			assert.Equal(t, tt.status, l.Status)
			assert.Equal(t, tt.caller, l.CallerNumber)
			assert.Equal(t, tt.duration, l.Duration)
			assert.Equal(t, tt.recording, l.Recording)
			assert.Equal(t, tt.department, l.Department)
			assert.Nil(t, l.Owner)
			require.NotNil(t, l.Agent)
			assert.Equal(t, tt.agentID, l.Agent.ID)
		})
	}
}

// The search hit of a call and the call's afterCall make the same call log: same id
// (so the writer writes it once whichever comes), same attribution, same facts.
func TestSearchHitIsTheAfterCall(t *testing.T) {
	t.Parallel()
	a, err := ParseAfterCall("acme", readTestdata(t, "aftercall_answered.json"), received)
	require.NoError(t, err)
	h, err := ParseSearchHit("acme", readTestdata(t, "search_answered.json"), received)
	require.NoError(t, err)
	assert.Equal(t, call.Key(a.Tenant, a.CallID), call.Key(h.Tenant, h.CallID))
	assert.Equal(t, a.LogID, h.LogID)
	h.Source = a.Source
	h.DepartmentID = a.DepartmentID // no source names the search's department id
	// The afterCall's leg has _st/_et/_su; the search's log_details item does not.
	for i := range h.Legs {
		h.Legs[i].StartedAt, h.Legs[i].EndedAt = a.Legs[i].StartedAt, a.Legs[i].EndedAt
	}
	assert.Equal(t, a, h)
}

func TestParseSearchHitErrors(t *testing.T) {
	t.Parallel()
	const prefix = "malformed MyOperator payload: search hit: "
	tests := []struct{ name, raw, want string }{
		{"not JSON", `{"_id":`, prefix + "invalid JSON at offset 7: unexpected end of JSON input"},
		{"array", `[]`, prefix + "want a JSON object, got array"},
		{"no id", `{"_source":{"event":1,"status":1}}`, prefix + "no call id: neither additional_parameters ui nor _id"},
		{"no event", `{"_id":"x","_source":{"status":1}}`, prefix + `"event" is missing; want 1 (incoming) or 2 (outgoing)`},
		{"bad status", `{"_id":"x","_source":{"event":1,"status":9}}`, prefix + `"status" must be 1 (answered), 2 (missed) or 3 (voicemail), got "9"`},
		{"no _source", `{"_id":"x"}`, prefix + `"event" is missing; want 1 (incoming) or 2 (outgoing)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := ParseSearchHit("acme", []byte(tt.raw), received)
			assert.Nil(t, l)
			require.ErrorIs(t, err, ErrMalformed)
			assert.EqualError(t, err, tt.want)
		})
	}
}
