package trace

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/testenv"
)

func TestCallsIndex(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	t0 := time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC)
	// 7 calls, a minute apart: c0 oldest. Statuses cycle through what the writer decides.
	statuses := []string{StatusWritten, StatusUnattributed, StatusRetrying, StatusDeadLettered, StatusPublished, StatusWritten, StatusWritten}
	for i, st := range statuses {
		id := fmt.Sprintf("c%d", i)
		at := t0.Add(time.Duration(i) * time.Minute)
		l := &call.Log{Direction: call.Incoming, Status: call.Answered, StartedAt: at.Add(-time.Minute), Duration: 42,
			Agent: &call.Agent{ID: fmt.Sprintf("agent%d", i%2), Name: "Sumit"}}
		require.NoError(t, s.Record(ctx, "acme", id, Update{Stage: Stage{Stage: StatusReceived, At: at, Kind: "log"}, Status: StatusReceived,
			Agent: l.Agent.ID, Call: InfoOf(l)}))
		u := Update{Stage: Stage{Stage: st, At: at.Add(time.Second), Kind: "log"}, Status: st}
		if st == StatusWritten {
			u.OwnerID, u.RecordID = "1001", "r"+id
		}
		require.NoError(t, s.Record(ctx, "acme", id, u))
	}
	// Another tenant's call never shows.
	require.NoError(t, s.Record(ctx, "beta", "b1", Update{Stage: Stage{Stage: StatusReceived, At: t0}, Status: StatusReceived}))

	ids := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.CallID)
		}
		return out
	}
	all, more, err := s.List(ctx, "acme", ListOptions{})
	require.NoError(t, err)
	assert.False(t, more)
	assert.Equal(t, []string{"c6", "c5", "c4", "c3", "c2", "c1", "c0"}, ids(all), "newest first, by first seen")
	c6 := all[0]
	assert.Equal(t, StatusWritten, c6.Status)
	assert.Equal(t, "1001", c6.Owner)
	assert.Equal(t, "rc6", c6.RecordID)
	assert.Equal(t, "incoming", c6.Direction)
	assert.Equal(t, "answered", c6.Outcome)
	assert.Equal(t, 42, c6.Duration)
	assert.Equal(t, "Sumit", c6.AgentName)
	assert.Equal(t, t0.Add(5*time.Minute), c6.StartedAt)
	assert.Equal(t, t0.Add(6*time.Minute), c6.FirstSeen, "the first stage's time, not a later one's")

	page, more, err := s.List(ctx, "acme", ListOptions{Limit: 3})
	require.NoError(t, err)
	assert.True(t, more)
	assert.Equal(t, []string{"c6", "c5", "c4"}, ids(page))
	page, more, err = s.List(ctx, "acme", ListOptions{Limit: 3, Before: page[2].Cursor()})
	require.NoError(t, err)
	assert.True(t, more)
	assert.Equal(t, []string{"c3", "c2", "c1"}, ids(page))

	for _, c := range []struct {
		o    ListOptions
		want []string
	}{
		{ListOptions{Statuses: []string{StatusWritten}}, []string{"c6", "c5", "c0"}},
		{ListOptions{Statuses: []string{StatusUnattributed, StatusDeadLettered}}, []string{"c3", "c1"}},
		{ListOptions{Statuses: []string{Waiting}}, []string{"c4"}},
		{ListOptions{Agent: "agent1"}, []string{"c5", "c3", "c1"}},
		{ListOptions{Agent: "agent1", Statuses: []string{StatusWritten}}, []string{"c5"}},
		{ListOptions{Agent: "nobody"}, nil},
	} {
		got, _, err := s.List(ctx, "acme", c.o)
		require.NoError(t, err)
		assert.Equal(t, c.want, ids(got), "%+v", c.o)
	}

	// One call's entry, for its page: the same facts as the list's.
	c5, err := s.Info(ctx, "acme", "c5")
	require.NoError(t, err)
	assert.Equal(t, all[1], c5)
	_, err = s.Info(ctx, "acme", "nope")
	assert.ErrorIs(t, err, ErrNotFound)

	// A call whose trace expired leaves the list with it.
	require.NoError(t, env.Redis.Del(ctx, s.hashKey("acme", "c6"), s.stagesKey("acme", "c6")).Err())
	all, _, err = s.List(ctx, "acme", ListOptions{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, []string{"c5"}, ids(all))
	_, err = s.Info(ctx, "acme", "c6")
	assert.ErrorIs(t, err, ErrNotFound)
}

// The index is trimmed (entries past TTL) at most once per IndexTrimEvery per tenant,
// and then surely: an entry past TTL is gone after the next interval's first stage.
func TestCallsIndexTrimmedOncePerInterval(t *testing.T) {
	env := testenv.New(t)
	clock := time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC)
	s := New(env.Redis, env.Prefix)
	s.clock = func() time.Time { return clock }
	ctx := context.Background()
	inIndex := func(id string) bool {
		return env.Redis.ZScore(ctx, s.indexKey("acme"), id).Err() == nil
	}
	record := func(id string, at time.Time) {
		require.NoError(t, s.Record(ctx, "acme", id, Update{Stage: Stage{Stage: StatusReceived, At: at}, Status: StatusReceived}))
	}
	record("old", clock.Add(-TTL-time.Hour)) // the first stage trims (nothing to trim yet)
	ttl := env.Redis.TTL(ctx, s.indexKey("acme")).Val()
	assert.Greater(t, ttl, TTL-time.Minute, "the index expires with its trim")
	record("new1", clock)
	assert.True(t, inIndex("old"), "not trimmed again within the interval")
	clock = clock.Add(IndexTrimEvery)
	record("new2", clock)
	assert.False(t, inIndex("old"), "trimmed once the interval passed")
	assert.True(t, inIndex("new1"))
	assert.True(t, inIndex("new2"))
}

// Calls ingested together share a millisecond of first-seen: paging through them,
// filtered or not, lists each exactly once. A millisecond alone as the cursor skipped
// the rest of a page's last millisecond, and the scan behind a filtered page the rest
// of each batch's.
func TestCallsListPagesThroughCallsOfOneMillisecond(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	t0 := time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC)
	// 250 calls in one millisecond (more than a scan batch), 20 the millisecond
	// before and 5 the one after; every third written, agents alternating.
	var received, written []CallUpdate
	var all []Entry // as listed: newest millisecond first, then call id descending
	add := func(n int, at time.Time) {
		for range n {
			i := len(all)
			id := fmt.Sprintf("n2.1596270949.%d", i) // not zero-padded: call ids order as strings
			agent := fmt.Sprintf("agent%d", i%2)
			received = append(received, CallUpdate{Tenant: "acme", CallID: id,
				Update: Update{Stage: Stage{Stage: StatusReceived, At: at, Kind: "log"}, Status: StatusReceived, Agent: agent}})
			st := StatusReceived
			if i%3 == 0 {
				st = StatusWritten
				written = append(written, CallUpdate{Tenant: "acme", CallID: id,
					Update: Update{Stage: Stage{Stage: StatusWritten, At: at.Add(time.Second), Kind: "log"}, Status: StatusWritten}})
			}
			all = append(all, Entry{CallID: id, FirstSeen: at, Status: st, Agent: agent})
		}
	}
	add(250, t0)
	add(20, t0.Add(-time.Millisecond))
	add(5, t0.Add(time.Millisecond))
	require.NoError(t, s.RecordAll(ctx, received))
	require.NoError(t, s.RecordAll(ctx, written))
	slices.SortFunc(all, func(a, b Entry) int {
		return cmp.Or(b.FirstSeen.Compare(a.FirstSeen), cmp.Compare(b.CallID, a.CallID))
	})
	want := func(o ListOptions) []string {
		var ids []string
		for _, e := range all {
			if o.Before.IsZero() || o.Before.past(redis.Z{Score: float64(e.FirstSeen.UnixMilli()), Member: e.CallID}) {
				if o.Agent == "" || e.Agent == o.Agent {
					if len(o.Statuses) == 0 || e.Status == o.Statuses[0] || o.Statuses[0] == Waiting && e.Status == StatusReceived {
						ids = append(ids, e.CallID)
					}
				}
			}
		}
		return ids
	}

	for _, tc := range []struct {
		name string
		o    ListOptions
	}{
		{"all, 7 a page", ListOptions{Limit: 7}},
		{"all, 1 a page", ListOptions{Limit: 1}},
		{"all, 50 a page", ListOptions{Limit: 50}},
		{"written, 4 a page", ListOptions{Statuses: []string{StatusWritten}, Limit: 4}},
		{"waiting, 30 a page", ListOptions{Statuses: []string{Waiting}, Limit: 30}},
		{"one agent, 9 a page", ListOptions{Agent: "agent1", Limit: 9}},
		{"written, one page", ListOptions{Statuses: []string{StatusWritten}, Limit: 500}},
		{"a bare millisecond: the calls before it", ListOptions{Before: Cursor{At: t0}, Limit: 6}},
		{"from a call inside the millisecond", ListOptions{Before: all[100].Cursor(), Limit: 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			o := tc.o
			for pages := 0; ; pages++ {
				require.Less(t, pages, len(all)+1, "the pages end")
				page, more, err := s.List(ctx, "acme", o)
				require.NoError(t, err)
				require.LessOrEqual(t, len(page), o.Limit)
				for _, e := range page {
					got = append(got, e.CallID)
				}
				if !more {
					break
				}
				require.NotEmpty(t, page)
				o.Before = page[len(page)-1].Cursor()
			}
			assert.Equal(t, want(tc.o), got, "every call once, in the list's order")
		})
	}
}

func TestCursorString(t *testing.T) {
	t0 := time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		text string
		c    Cursor
	}{
		{"", Cursor{}},
		{"1791622800000", Cursor{At: t0}}, // the console's links before call ids: still read
		{"1791622800000:n2.1596270949.2175190", Cursor{At: t0, CallID: "n2.1596270949.2175190"}},
		{"1791622800000:a:b", Cursor{At: t0, CallID: "a:b"}},
	} {
		c, err := ParseCursor(tc.text)
		require.NoError(t, err, tc.text)
		assert.Equal(t, tc.c, c, tc.text)
		assert.Equal(t, tc.text, c.String())
	}
	for _, bad := range []string{"x", ":a", "12x:a"} {
		_, err := ParseCursor(bad)
		assert.Error(t, err, bad)
	}
}
