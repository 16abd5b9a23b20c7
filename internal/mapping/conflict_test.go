package mapping_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
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
		second call.Mapping
		field  string // "" when it is stored
		value  string
	}{
		{"phone", m("a2", "1002", "", "+918586848544"), "phone", "+918586848544"},
		{"phone among others", m("a2", "1002", "", "+919711636496", "+918586848544"), "phone", "+918586848544"},
		{"email", m("a2", "1002", "sumit.arya@example.com"), "email", "sumit.arya@example.com"},
		{"uuid", func() call.Mapping { x := m("a2", "1002", ""); x.MyOperatorUUID = "uuid-1"; return x }(), "uuid", "uuid-1"},
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
	n, err := s.Fill(ctx, "acme", []call.Mapping{m("a1", "1001", "sumit.arya@example.com", "+918586848544")})
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
		{strings.Repeat("a", call.MaxAgentIDLen), true},
		{"", false},
		{"   ", false},
		{strings.Repeat("a", call.MaxAgentIDLen+1), false},
		{strings.Repeat("a", 3000), false},
		{"a\nb", false},
		{"a\x00b", false},
		{"a\tb", false},
		{"a\u200bb", false}, // zero-width space
		{"a\xffb", false},
	}
	for _, tc := range cases {
		t.Run(tc.id[:min(len(tc.id), 20)], func(t *testing.T) {
			err := call.ValidateAgentID(tc.id)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, call.ErrInvalidMapping)
			x := m(tc.id, "1001", "")
			assert.ErrorIs(t, x.Validate(), call.ErrInvalidMapping, "Validate checks the id too")
		})
	}
}

// A value the agent's current mapping lists already is no conflict, though another
// agent holds it (Fill left it so, or two agents shared it before the rule): the
// agent's mapping can still change, and the value stays with its holder. A value the
// change adds is refused as before.
func TestKeptValueIsNoConflict(t *testing.T) {
	t.Parallel()
	const phone = "+918586848544"
	cases := []struct {
		name   string
		setup  func(ctx context.Context, t *testing.T, env *testenv.Env, s *mapping.Store) // leaves a1 listing phone, held by a2
		change func(cur call.Mapping) call.Mapping
		field  string // the conflict's field; "" when the change is stored
	}{
		{"suspended after a fill", fillShared, func(c call.Mapping) call.Mapping { c.Status = call.MappingSuspended; return c }, ""},
		{"renamed after a fill", fillShared, func(c call.Mapping) call.Mapping { c.Name = "Sumit Arya"; return c }, ""},
		{"owner changed after a fill", fillShared, func(c call.Mapping) call.Mapping { c.CRMUserID = "1009"; return c }, ""},
		{"renamed, shared before the rule", sharedBeforeRule, func(c call.Mapping) call.Mapping { c.Name = "Sumit Arya"; return c }, ""},
		{"a new held value is still refused", fillShared, func(c call.Mapping) call.Mapping { c.Email = "ravi@example.com"; return c }, "email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			ctx := t.Context()
			s := mapping.NewStore(env.Redis, env.Prefix)
			tc.setup(ctx, t, env, s)
			cur, err := s.Get(ctx, "acme", "a1")
			require.NoError(t, err)
			next := tc.change(*cur)
			next.UpdatedAt = time.Time{}
			_, err = s.Update(ctx, "acme", "a1", "admin-api", func(*call.Mapping) (*call.Mapping, error) { return &next, nil })
			if tc.field != "" {
				var ce *mapping.ConflictError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, tc.field, ce.Field)
				return
			}
			require.NoError(t, err)
			got, err := s.Get(ctx, "acme", "a1")
			require.NoError(t, err)
			assert.Equal(t, next.Status, got.Status)
			assert.Equal(t, next.Name, got.Name)
			assert.Equal(t, next.CRMUserID, got.CRMUserID)
			assert.Contains(t, got.Phones, phone, "the mapping still lists it")
			holder, err := s.Resolve(ctx, "acme", call.Agent{Phone: phone})
			require.NoError(t, err)
			assert.Equal(t, "a2", holder.MyOperatorUserID, "the phone stays with its holder")
			_, err = s.Resolve(ctx, "acme", call.Agent{Email: "sumit.arya@example.com"})
			if next.Status == call.MappingActive {
				assert.NoError(t, err, "the agent's own entries are kept")
			}
		})
	}
}

// fillShared is the state TestFillLeavesTakenEntries makes: a1's mapping lists a phone
// whose index entry is a2's.
func fillShared(ctx context.Context, t *testing.T, _ *testenv.Env, s *mapping.Store) {
	require.NoError(t, s.Put(ctx, "acme", m("a2", "1002", "ravi@example.com", "+918586848544")))
	_, err := s.Fill(ctx, "acme", []call.Mapping{m("a1", "1001", "sumit.arya@example.com", "+918586848544")})
	require.NoError(t, err)
}

// sharedBeforeRule writes what a version before the rule left: two agents' mappings
// with one phone, its index entry the later's.
func sharedBeforeRule(ctx context.Context, t *testing.T, env *testenv.Env, s *mapping.Store) {
	require.NoError(t, s.Put(ctx, "acme", m("a1", "1001", "sumit.arya@example.com", "+918586848544")))
	a2, err := json.Marshal(m("a2", "1002", "ravi@example.com", "+918586848544"))
	require.NoError(t, err)
	require.NoError(t, env.Redis.HSet(ctx, env.Prefix+":map:{acme}:byid", "a2", a2).Err())
	require.NoError(t, env.Redis.HSet(ctx, env.Prefix+":map:{acme}:phone", "+918586848544", "a2").Err())
	require.NoError(t, env.Redis.HSet(ctx, env.Prefix+":map:{acme}:email", "ravi@example.com", "a2").Err())
}

// UpdateLeaving (user sync's write) stores the mapping and leaves a value another
// agent holds to it, saying so; Claim takes it once that agent lets it go.
func TestUpdateLeavingAndClaim(t *testing.T) {
	t.Parallel()
	const phone = "+918586848544"
	env := testenv.New(t)
	ctx := t.Context()
	j := &recordingJournal{}
	s := mapping.NewStore(env.Redis, env.Prefix).WithJournal(j)
	require.NoError(t, s.Put(ctx, "acme", m("a9", "1009", "", phone)))

	next := m("a1", "1001", "sumit.arya@example.com", phone, "+919711636496")
	got, left, err := s.UpdateLeaving(ctx, "acme", "a1", "sync", func(*call.Mapping) (*call.Mapping, error) { return &next, nil })
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, []*mapping.ConflictError{{Field: "phone", Value: phone, Holder: "a9"}}, left)
	assert.Equal(t, 2, j.len(), "the change is journaled")
	for _, tc := range []struct {
		agent call.Agent
		want  string
	}{{call.Agent{Phone: phone}, "1009"}, {call.Agent{Phone: "+919711636496"}, "1001"}, {call.Agent{Email: "sumit.arya@example.com"}, "1001"}} {
		r, err := s.Resolve(ctx, "acme", tc.agent)
		require.NoError(t, err)
		assert.Equal(t, tc.want, r.CRMUserID, "%+v", tc.agent)
	}

	left, err = s.Claim(ctx, "acme", "a1")
	require.NoError(t, err)
	assert.Len(t, left, 1, "still held")
	require.NoError(t, s.Put(ctx, "acme", m("a9", "1009", "")))
	left, err = s.Claim(ctx, "acme", "a1")
	require.NoError(t, err)
	assert.Empty(t, left)
	r, err := s.Resolve(ctx, "acme", call.Agent{Phone: phone})
	require.NoError(t, err)
	assert.Equal(t, "1001", r.CRMUserID, "claimed once free")
	assert.Equal(t, 3, j.len(), "a claim changes no mapping: nothing journaled")
}

// Claim tells the change hook (which re-drives parked calls) only when it pointed an
// index entry at the agent: a claim that took nothing changed nothing.
func TestClaimTellsOnlyOfAChange(t *testing.T) {
	t.Parallel()
	const phone = "+918586848544"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s *mapping.Store) // before the claim of a1
		want  []string                             // agents the hook is told of by the claim
	}{
		{"no mapping", func(*testing.T, *mapping.Store) {}, nil},
		{"every value is the agent's already", func(t *testing.T, s *mapping.Store) {
			require.NoError(t, s.Put(t.Context(), "acme", m("a1", "1001", "", phone)))
		}, nil},
		{"the value is still another agent's", func(t *testing.T, s *mapping.Store) {
			leaveToA9(t, s, phone)
		}, nil},
		{"the value was let go", func(t *testing.T, s *mapping.Store) {
			leaveToA9(t, s, phone)
			require.NoError(t, s.Put(t.Context(), "acme", m("a9", "1009", "")))
		}, []string{"a1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			var (
				mu   sync.Mutex
				told []string
			)
			s := mapping.NewStore(env.Redis, env.Prefix).OnChange(func(_, id string, _ *call.Mapping) {
				mu.Lock()
				defer mu.Unlock()
				told = append(told, id)
			})
			tc.setup(t, s)
			mu.Lock()
			told = nil
			mu.Unlock()

			_, err := s.Claim(t.Context(), "acme", "a1")
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, tc.want, told)
		})
	}
}

// leaveToA9 maps a9 with phone, then a1 with it too through UpdateLeaving, which leaves
// it to a9.
func leaveToA9(t *testing.T, s *mapping.Store, phone string) {
	t.Helper()
	require.NoError(t, s.Put(t.Context(), "acme", m("a9", "1009", "", phone)))
	next := m("a1", "1001", "", phone)
	_, left, err := s.UpdateLeaving(t.Context(), "acme", "a1", "sync", func(*call.Mapping) (*call.Mapping, error) { return &next, nil })
	require.NoError(t, err)
	require.Len(t, left, 1)
}

// Fill and a rebuild agree on who has a value two journaled mappings share: the newer.
func TestFillAndRebuildGiveSharedValueToNewer(t *testing.T) {
	t.Parallel()
	const phone = "+918586848544"
	env := testenv.New(t)
	k := env.Kafka(t)
	p := kafkabus.NewProducer(k)
	t.Cleanup(func() { _ = p.Close() })
	ctx := t.Context()
	j := mapping.KafkaJournal{Publisher: p, Topic: env.Topics.Mapping}
	older, newer := m("a1", "1001", "asha@example.com", phone), m("a2", "1002", "ravi@example.com", phone)
	older.UpdatedAt = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	newer.UpdatedAt = older.UpdatedAt.Add(time.Hour)
	// A journal from before the rule (or one user sync wrote) shares the phone.
	for _, x := range []call.Mapping{older, newer} {
		require.NoError(t, j.Record(ctx, mapping.Change{Tenant: "acme", UserID: x.MyOperatorUserID, Actor: "admin-api", Mapping: &x}))
	}
	s := mapping.NewStore(env.Redis, env.Prefix)
	byTenant, _, err := mapping.ReadJournal(ctx, k, env.Topics.Mapping)
	require.NoError(t, err)
	cases := []struct {
		name    string
		restore func() error
	}{
		{"fill", func() error {
			var ms []call.Mapping
			for _, x := range byTenant["acme"] {
				ms = append(ms, x)
			}
			// Both orders a map may give.
			for _, order := range [][]call.Mapping{ms, {ms[1], ms[0]}} {
				require.NoError(t, s.Flush(ctx, "acme"))
				n, err := s.Fill(ctx, "acme", order)
				if err != nil {
					return err
				}
				require.Equal(t, 2, n)
				got, err := s.Resolve(ctx, "acme", call.Agent{Phone: phone})
				require.NoError(t, err)
				assert.Equal(t, "1002", got.CRMUserID)
			}
			return nil
		}},
		{"rebuild", func() error { _, err := mapping.Rebuild(ctx, k, env.Topics.Mapping, s); return err }},
	}
	for _, tc := range cases { // in turn: one Redis
		require.NoError(t, s.Flush(ctx, "acme"))
		require.NoError(t, tc.restore(), tc.name)
		got, err := s.Resolve(ctx, "acme", call.Agent{Phone: phone})
		require.NoError(t, err, tc.name)
		assert.Equal(t, "1002", got.CRMUserID, "%s: the newer mapping has the phone", tc.name)
		got, err = s.Resolve(ctx, "acme", call.Agent{Email: "asha@example.com"})
		require.NoError(t, err, tc.name)
		assert.Equal(t, "1001", got.CRMUserID, "%s: the older keeps its other entries", tc.name)
	}
}
