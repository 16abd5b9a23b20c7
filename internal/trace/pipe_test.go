package trace

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/testenv"
)

// Updates batched with RecordPipe (ingest's received + published), their index entry
// added at once or collected for FlushIndex (ingest's background batch), show the
// same trace and calls-list entry as the same updates recorded one by one.
func TestRecordPipeEqualsOneByOne(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	l := &call.Log{Direction: call.Incoming, Status: call.Answered, StartedAt: at.Add(-time.Minute), Duration: 42,
		Agent: &call.Agent{ID: "u1", Name: "Sumit"}}
	updates := func(first string) []Update {
		return []Update{
			{Stage: Stage{Stage: first, At: at, Kind: "log"}, Status: first, LogID: "log-1", Agent: "u1", Call: InfoOf(l)},
			{Stage: Stage{Stage: StatusPublished, At: at.Add(time.Millisecond), Kind: "log"}, Status: StatusPublished, LogID: "log-1", Agent: "u1", Call: InfoOf(l)},
		}
	}
	for _, tc := range []struct {
		name, first, before, want string
	}{
		{"new call", StatusReceived, "", StatusPublished},
		{"written by a fast writer first", StatusReceived, StatusWritten, StatusWritten},
		{"a late status in the batch", StatusUnattributed, "", StatusUnattributed},
		{"written in the batch", StatusWritten, "", StatusWritten},
		{"written before a late status", StatusUnattributed, StatusWritten, StatusWritten},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [3]*Trace
			for i, id := range []string{"one-" + tc.name, "pipe-" + tc.name, "batch-" + tc.name} {
				if tc.before != "" {
					require.NoError(t, s.Record(ctx, "acme", id, Update{Stage: Stage{Stage: tc.before, At: at}, Status: tc.before, OwnerID: "1001"}))
				}
				us := updates(tc.first)
				if i == 0 {
					for _, u := range us {
						require.NoError(t, s.Record(ctx, "acme", id, u))
					}
				} else {
					_, err := env.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
						if i == 1 {
							return s.RecordPipe(ctx, p, nil, "acme", id, us...)
						}
						var idx IndexBatch
						if err := s.RecordPipe(ctx, p, &idx, "acme", id, us...); err != nil {
							return err
						}
						s.FlushIndex(ctx, p, &idx)
						return nil
					})
					require.NoError(t, err)
				}
				tr, err := s.Get(ctx, "acme", id)
				require.NoError(t, err)
				tr.CallID = ""
				got[i] = tr
			}
			assert.Equal(t, tc.want, got[1].Status)
			assert.Equal(t, got[0], got[1])
			assert.Equal(t, got[0], got[2])
			assert.Len(t, got[1].Stages, len(updates(tc.first))+min(len(tc.before), 1))
		})
	}
	entries, _, err := s.List(ctx, "acme", ListOptions{})
	require.NoError(t, err)
	require.Len(t, entries, 15, "every call listed, however its index entry went")
	for _, e := range entries {
		assert.Equal(t, "Sumit", e.AgentName, e.CallID)
		assert.Equal(t, 42, e.Duration, e.CallID)
		assert.Equal(t, at, e.FirstSeen.UTC(), "%s: first seen at the first stage", e.CallID)
	}
}

// RecordAll (replay's batch) leaves the same traces and calls lists as the same
// updates recorded one by one, across tenants, though it adds each tenant's index
// entries in one command.
func TestRecordAllEqualsOneByOne(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	l := &call.Log{Direction: call.Incoming, Status: call.Answered, StartedAt: at.Add(-time.Minute), Duration: 42,
		Agent: &call.Agent{ID: "u1", Name: "Sumit"}}
	updates := func(prefix string) []CallUpdate {
		var out []CallUpdate
		for i, tenant := range []string{prefix + "a", prefix + "b", prefix + "a", prefix + "a", prefix + "b"} {
			u := Update{Stage: Stage{Stage: "replayed", At: at.Add(time.Duration(i) * time.Second), Kind: "log", Detail: "from dlq"}}
			if i == 3 { // a status change and call facts in the batch too
				u.Status, u.Call = StatusWritten, InfoOf(l)
			}
			out = append(out, CallUpdate{Tenant: tenant, CallID: "c" + string(rune('0'+i)), Update: u})
		}
		return out
	}
	for _, u := range updates("one-") {
		require.NoError(t, s.Record(ctx, u.Tenant, u.CallID, u.Update))
	}
	require.NoError(t, s.RecordAll(ctx, updates("all-")))
	for _, tenant := range []string{"a", "b"} {
		one, err := env.Redis.ZRangeWithScores(ctx, s.indexKey("one-"+tenant), 0, -1).Result()
		require.NoError(t, err)
		all, err := env.Redis.ZRangeWithScores(ctx, s.indexKey("all-"+tenant), 0, -1).Result()
		require.NoError(t, err)
		require.NotEmpty(t, all)
		assert.Equal(t, one, all, "tenant %s's calls index", tenant)
		for _, z := range one {
			id := z.Member.(string)
			t1, err := s.Get(ctx, "one-"+tenant, id)
			require.NoError(t, err)
			t2, err := s.Get(ctx, "all-"+tenant, id)
			require.NoError(t, err)
			t1.Tenant, t2.Tenant = "", ""
			assert.Equal(t, t1, t2, id)
		}
	}
	listed, _, err := s.List(ctx, "all-a", ListOptions{})
	require.NoError(t, err)
	require.Len(t, listed, 1, "the call whose update set a status and its facts is listed")
	assert.Equal(t, "Sumit", listed[0].AgentName)
	ttl, err := env.Redis.TTL(ctx, s.indexKey("all-b")).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Duration(0), "the index expires like Record's")
}

// Ingest's received and published go in the trace hash, not the stages list (two
// Redis commands a webhook fewer), and read back in time order among a writer's
// stages — one the writer recorded before the webhook's batch was written included —
// while a stage with a detail still goes to the list, and reads back in time order
// too.
func TestPipedStagesMergeWithTheList(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	// The writer was quicker than ingest's background batch: its stage is stored first.
	require.NoError(t, s.Record(ctx, "acme", "c1", Update{Stage: Stage{Stage: StatusWritten, At: at.Add(40 * time.Millisecond), Kind: "log"}, Status: StatusWritten, OwnerID: "1001"}))
	_, err := env.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		return s.RecordPipe(ctx, p, nil, "acme", "c1",
			Update{Stage: Stage{Stage: StatusReceived, At: at, Kind: "log"}, Status: StatusReceived},
			Update{Stage: Stage{Stage: StatusPublished, At: at.Add(3 * time.Millisecond), Kind: "log"}, Status: StatusPublished},
			// Stamped when the batch is recorded, after published was.
			Update{Stage: Stage{Stage: "click_to_call", At: at.Add(4 * time.Millisecond), Kind: "log", Detail: "placed by calltrack's click-to-call, reference r1"}})
	})
	require.NoError(t, err)
	tr, err := s.Get(ctx, "acme", "c1")
	require.NoError(t, err)
	assert.Equal(t, StatusWritten, tr.Status)
	assert.Equal(t, []Stage{
		{Stage: StatusReceived, At: at, Kind: "log"},
		{Stage: StatusPublished, At: at.Add(3 * time.Millisecond), Kind: "log"},
		{Stage: "click_to_call", At: at.Add(4 * time.Millisecond), Kind: "log", Detail: "placed by calltrack's click-to-call, reference r1"},
		{Stage: StatusWritten, At: at.Add(40 * time.Millisecond), Kind: "log"},
	}, tr.Stages)

	// A webhook's batch alone leaves no stages list; its trace expires with its hash.
	_, err = env.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		return s.RecordPipe(ctx, p, nil, "acme", "c2",
			Update{Stage: Stage{Stage: StatusReceived, At: at, Kind: "log"}, Status: StatusReceived},
			Update{Stage: Stage{Stage: StatusPublished, At: at, Kind: "log"}, Status: StatusPublished})
	})
	require.NoError(t, err)
	n, err := env.Redis.Exists(ctx, s.stagesKey("acme", "c2")).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "no stages list")
	ttl, err := env.Redis.PTTL(ctx, s.hashKey("acme", "c2")).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, TTL-time.Minute)
	tr, err = s.Get(ctx, "acme", "c2")
	require.NoError(t, err)
	assert.Equal(t, StatusPublished, tr.Status)
	// The same instant: the batch's order stands.
	assert.Equal(t, []Stage{{Stage: StatusReceived, At: at, Kind: "log"}, {Stage: StatusPublished, At: at, Kind: "log"}}, tr.Stages)
	if env.RedisKind != testenv.Embedded { // miniredis has no OBJECT ENCODING
		enc, err := env.Redis.ObjectEncoding(ctx, s.hashKey("acme", "c2")).Result()
		require.NoError(t, err)
		assert.Equal(t, "listpack", enc, "the hash stays compact")
	}
}

func TestCompactField(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 5, time.UTC)
	for _, tc := range []struct {
		name string
		st   Stage
		ok   bool
	}{
		{"ingest's received", Stage{Stage: StatusReceived, At: at, Kind: "log"}, true},
		{"with a detail", Stage{Stage: StatusReceived, At: at, Kind: "log", Detail: "x"}, false},
		{"no kind", Stage{Stage: StatusReceived, At: at}, false},
		{"a colon in its name", Stage{Stage: "a:b", At: at, Kind: "log"}, false},
		{"a long name", Stage{Stage: "a_stage_name_of_thirty_chars__", At: at, Kind: "log"}, false},
		{"before 1970", Stage{Stage: StatusReceived, At: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), Kind: "log"}, false},
		{"no time", Stage{Stage: StatusReceived, Kind: "log"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, v, ok := compactField(&tc.st, 1)
			require.Equal(t, tc.ok, ok)
			if !ok {
				return
			}
			assert.Less(t, len(f), 64)
			got := compactStages(map[string]string{f: v, "tenant": "acme", "st:bad": "log"})
			require.Len(t, got, 1)
			assert.Equal(t, tc.st, got[0].Stage)
		})
	}
}

// A backfilled call's stages reached Redis as received, written, published (the
// backfill records "published" after Kafka's ack, the writer was quicker): the trace
// `calltrack trace` and the console show lists them as they happened.
func TestStagesInTimeOrder(t *testing.T) {
	env := testenv.New(t)
	s := New(env.Redis, env.Prefix)
	ctx := context.Background()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, u := range []Update{
		{Stage: Stage{Stage: StatusReceived, At: at, Kind: "log", Detail: "found in MyOperator's call log"}, Status: StatusReceived},
		{Stage: Stage{Stage: StatusWritten, At: at.Add(4 * time.Millisecond), Kind: "log", Detail: "record 1002"}, Status: StatusWritten},
		{Stage: Stage{Stage: StatusPublished, At: at.Add(2 * time.Millisecond), Kind: "log", Detail: "published by the backfill"}, Status: StatusPublished},
	} {
		require.NoError(t, s.Record(ctx, "acme", "bf1", u))
	}
	tr, err := s.Get(ctx, "acme", "bf1")
	require.NoError(t, err)
	var b strings.Builder
	Render(&b, tr)
	assert.Contains(t, b.String(), `  2026-11-30 09:00:00.000  +0s       received   log  found in MyOperator's call log
  2026-11-30 09:00:00.002  +2ms      published  log  published by the backfill
  2026-11-30 09:00:00.004  +2ms      written    log  record 1002
written 4ms after the first stage
`)
}
