package mapping_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/testenv"
)

// recordingJournal keeps the changes it is told about.
type recordingJournal struct {
	mu      sync.Mutex
	changes []mapping.Change
}

func (j *recordingJournal) Record(_ context.Context, c mapping.Change) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.changes = append(j.changes, c)
	return nil
}

func (j *recordingJournal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.changes)
}

// An email, phone or uuid names one agent: a second agent's mapping with it is refused
// (before the journal hears of it), and the first agent's mapping and index entries
// stay as they were.
func TestConflictRefused(t *testing.T) {
	t.Parallel()
	first := m("a1", "1001", "sumit.arya@example.com", "+918586848544")
	first.MyOperatorUUID = "uuid-1"
	cases := []struct {
		name   string
		second mapping.Mapping
		field  string // "" when it is stored
		value  string
	}{
		{"phone", m("a2", "1002", "", "+918586848544"), "phone", "+918586848544"},
		{"phone among others", m("a2", "1002", "", "+919711636496", "+918586848544"), "phone", "+918586848544"},
		{"email", m("a2", "1002", "sumit.arya@example.com"), "email", "sumit.arya@example.com"},
		{"uuid", func() mapping.Mapping { x := m("a2", "1002", ""); x.MyOperatorUUID = "uuid-1"; return x }(), "uuid", "uuid-1"},
		{"nothing shared", m("a2", "1002", "ravi@example.com", "+919711636496"), "", ""},
		{"the same agent again", m("a1", "1003", "sumit.arya@example.com", "+918586848544"), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			ctx := t.Context()
			j := &recordingJournal{}
			s := mapping.NewStore(env.Redis, env.Prefix).WithJournal(j)
			require.NoError(t, s.Put(ctx, "acme", first))
			err := s.Put(ctx, "acme", tc.second)
			if tc.field == "" {
				require.NoError(t, err)
				got, err := s.Get(ctx, "acme", tc.second.MyOperatorUserID)
				require.NoError(t, err)
				assert.Equal(t, tc.second.CRMUserID, got.CRMUserID)
				return
			}
			require.ErrorIs(t, err, mapping.ErrConflict)
			var ce *mapping.ConflictError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, mapping.ConflictError{Field: tc.field, Value: tc.value, Holder: "a1"}, *ce)
			assert.Equal(t, 1, j.len(), "the refused change is not journaled")
			_, err = s.Get(ctx, "acme", "a2")
			assert.ErrorIs(t, err, mapping.ErrNotFound, "nothing stored")
			for _, a := range []call.Agent{{Phone: "+918586848544"}, {Email: "sumit.arya@example.com"}, {ID: "uuid-1"}} {
				got, err := s.Resolve(ctx, "acme", a)
				require.NoError(t, err, "%+v", a)
				assert.Equal(t, "1001", got.CRMUserID, "%+v still resolves to the first agent", a)
			}
			isAgent, err := s.IsAgentPhone(ctx, "acme", "+919711636496")
			require.NoError(t, err)
			assert.False(t, isAgent, "no index entry of the refused mapping")
		})
	}
}

// Deleting or changing one agent's mapping removes only the index entries that point
// at it: another agent's, for the same value, stay.
func TestDeleteLeavesOthersIndexEntries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(ctx context.Context, s *mapping.Store) error
	}{
		{"delete", func(ctx context.Context, s *mapping.Store) error { return s.DeleteBy(ctx, "acme", "a2", "admin-api") }},
		{"change phones", func(ctx context.Context, s *mapping.Store) error {
			return s.Put(ctx, "acme", m("a2", "1002", "", "+919811111111"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			ctx := t.Context()
			s := mapping.NewStore(env.Redis, env.Prefix)
			require.NoError(t, s.Put(ctx, "acme", m("a1", "1001", "sumit.arya@example.com", "+918586848544")))
			require.ErrorIs(t, s.Put(ctx, "acme", m("a2", "1002", "", "+918586848544")), mapping.ErrConflict)
			require.NoError(t, s.Put(ctx, "acme", m("a2", "1002", "", "+919711636496")))
			require.NoError(t, tc.change(ctx, s))
			got, err := s.Resolve(ctx, "acme", call.Agent{Phone: "+918586848544"})
			require.NoError(t, err)
			assert.Equal(t, "1001", got.CRMUserID)
			isAgent, err := s.IsAgentPhone(ctx, "acme", "+918586848544")
			require.NoError(t, err)
			assert.True(t, isAgent, "the first agent's number still counts as an agent's")
			isAgent, err = s.IsAgentPhone(ctx, "acme", "+919711636496")
			require.NoError(t, err)
			assert.False(t, isAgent, "the changed agent's old number is unlinked")
		})
	}
}

// A value freed by the agent that had it can be mapped to another; one whose index
// entry points at an agent with no mapping (left by an older version) is taken over.
func TestFreedValueCanBeTaken(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := t.Context()
	s := mapping.NewStore(env.Redis, env.Prefix)
	require.NoError(t, s.Put(ctx, "acme", m("a1", "1001", "", "+918586848544")))
	require.NoError(t, s.Delete(ctx, "acme", "a1"))
	require.NoError(t, s.Put(ctx, "acme", m("a2", "1002", "", "+918586848544")))
	require.NoError(t, env.Redis.HSet(ctx, env.Prefix+":map:{acme}:email", "ravi@example.com", "gone").Err())
	require.NoError(t, s.Put(ctx, "acme", m("a3", "1003", "ravi@example.com")))
	got, err := s.Resolve(ctx, "acme", call.Agent{Email: "ravi@example.com"})
	require.NoError(t, err)
	assert.Equal(t, "1003", got.CRMUserID)
}

// Fill restores a journaled mapping whose phone another agent took meanwhile without
// that phone: the newer holder keeps it.
func TestFillLeavesTakenEntries(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := t.Context()
	s := mapping.NewStore(env.Redis, env.Prefix)
	require.NoError(t, s.Put(ctx, "acme", m("a2", "1002", "", "+918586848544")))
	n, err := s.Fill(ctx, "acme", []mapping.Mapping{m("a1", "1001", "sumit.arya@example.com", "+918586848544")})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err := s.Resolve(ctx, "acme", call.Agent{Phone: "+918586848544"})
	require.NoError(t, err)
	assert.Equal(t, "1002", got.CRMUserID)
	got, err = s.Resolve(ctx, "acme", call.Agent{Email: "sumit.arya@example.com"})
	require.NoError(t, err)
	assert.Equal(t, "1001", got.CRMUserID, "its other entries are written")
}

// Agent ids are lenient (any printable text) but bounded.
func TestValidateAgentID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		id string
		ok bool
	}{
		{"5cd40f6556f2f124", true},
		{"x y/../z?&a=b", true},
		{"100%", true},
		{"agent-é", true},
		{strings.Repeat("a", mapping.MaxAgentIDLen), true},
		{"", false},
		{"   ", false},
		{strings.Repeat("a", mapping.MaxAgentIDLen+1), false},
		{strings.Repeat("a", 3000), false},
		{"a\nb", false},
		{"a\x00b", false},
		{"a\tb", false},
		{"a\u200bb", false}, // zero-width space
		{"a\xffb", false},
	}
	for _, tc := range cases {
		t.Run(tc.id[:min(len(tc.id), 20)], func(t *testing.T) {
			err := mapping.ValidateAgentID(tc.id)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, mapping.ErrInvalid)
			x := m(tc.id, "1001", "")
			assert.ErrorIs(t, x.Validate(), mapping.ErrInvalid, "Validate checks the id too")
		})
	}
}
