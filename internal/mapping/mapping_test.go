package mapping_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/schemas"
)

func m(agent, crm, email string, phones ...string) call.Mapping {
	return call.Mapping{MyOperatorUserID: agent, CRMUserID: crm, Email: email, Phones: phones, Name: "User " + crm,
		Source: call.MappingManual, Status: call.MappingActive, UpdatedBy: "admin-api"}
}

type failingJournal struct{}

func (failingJournal) Record(context.Context, mapping.Change) error { return errors.New("kafka down") }

// The journal comes first: when it cannot record a change, Redis is not changed.
func TestJournalBeforeRedis(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	s := mapping.NewStore(env.Redis, env.Prefix)
	require.NoError(t, s.Put(t.Context(), "acme", m("a1", "101", "a@example.com")))
	s.WithJournal(failingJournal{})
	err := s.Put(t.Context(), "acme", m("a1", "202", "a@example.com"))
	require.ErrorContains(t, err, "kafka down")
	assert.ErrorContains(t, s.DeleteBy(t.Context(), "acme", "a1", "admin-api"), "kafka down")
	got, err := s.Get(t.Context(), "acme", "a1")
	require.NoError(t, err)
	assert.Equal(t, "101", got.CRMUserID, "Redis unchanged")
}

// Concurrent writers of one agent are serialised and notify once each.
func TestUpdateSerialised(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	var mu sync.Mutex
	seen := 0
	s := mapping.NewStore(env.Redis, env.Prefix).OnChange(func(string, string, *call.Mapping) {
		mu.Lock()
		seen++
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Update(context.Background(), "acme", "a1", "test", func(cur *call.Mapping) (*call.Mapping, error) {
				next := m("a1", "1", "")
				if cur != nil {
					next.Name = cur.Name + "x" // read-modify-write: lost updates would show
				}
				return &next, nil
			})
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	got, err := s.Get(t.Context(), "acme", "a1")
	require.NoError(t, err)
	assert.Equal(t, "User 1"+"xxxxxxxxxxxxxxxxxxx", got.Name, "no update lost")
	assert.Equal(t, 20, seen)
}

// Every change is on the compacted topic (key tenant:agent, tombstone on delete, who
// did it), and a rebuild from it restores exactly what Redis had.
func TestJournalAndRebuild(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	k := env.Kafka(t)
	p := kafkabus.NewProducer(k)
	t.Cleanup(func() { _ = p.Close() })
	s := mapping.NewStore(env.Redis, env.Prefix).WithJournal(mapping.KafkaJournal{Publisher: p, Topic: env.Topics.Mapping})
	ctx := t.Context()

	require.NoError(t, s.Put(ctx, "acme", m("a1", "101", "asha@example.com", "+918586848544")))
	require.NoError(t, s.Put(ctx, "acme", m("a2", "102", "ravi@example.com")))
	a3 := m("a3", "103", "meena@example.com")
	a3.Source, a3.UpdatedBy = call.MappingEmailMatch, "sync"
	require.NoError(t, s.Put(ctx, "acme", a3))
	require.NoError(t, s.Put(ctx, "acme", m("a1", "111", "asha@example.com", "+918586848544")))
	require.NoError(t, s.DeleteBy(ctx, "acme", "a2", "admin-api"))
	require.NoError(t, s.Put(ctx, "beta", m("b1", "9", "b@example.com")))
	// A tenant whose keys are in Redis but never journaled is flushed by the rebuild.
	require.NoError(t, mapping.NewStore(env.Redis, env.Prefix).Put(ctx, "ghost", m("g1", "1", "")))

	before, err := s.List(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, before, 2)

	// The records as a consumer of the topic sees them.
	recs := readAll(t, env)
	require.Len(t, recs, 6)
	var tomb *kafka.Message
	for i, r := range recs {
		require.NoError(t, schemas.Validate(kafkabus.TopicMapping, r.Value), "record %d", i)
		if string(r.Key) == "acme:a2" && r.Value == nil {
			tomb = &recs[i]
		}
	}
	require.NotNil(t, tomb, "a deletion is a tombstone (null value)")
	assert.Equal(t, "admin-api", kafkabus.Header(*tomb, mapping.HeaderActor))
	assert.Equal(t, "delete", kafkabus.Header(*tomb, mapping.HeaderChange))
	assert.Equal(t, "manual", kafkabus.Header(*tomb, mapping.HeaderSource))
	assert.Equal(t, "acme", kafkabus.Header(*tomb, kafkabus.HeaderTenant))

	// Redis loses everything; the rebuild brings back the same mappings.
	require.NoError(t, s.Flush(ctx, "acme"))
	_, err = s.Resolve(ctx, "acme", call.Agent{Phone: "+918586848544"})
	require.ErrorIs(t, err, mapping.ErrNotFound)
	st, err := mapping.Rebuild(ctx, k, env.Topics.Mapping, s)
	require.NoError(t, err)
	assert.Equal(t, 6, st.Records)
	assert.Equal(t, 1, st.Tombstones)
	assert.Equal(t, []string{"acme", "beta", "ghost"}, st.Tenants)
	assert.Equal(t, map[string]int{"acme": 2, "beta": 1, "ghost": 0}, st.Mappings)
	after, err := s.List(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, norm(before), norm(after))
	got, err := s.Resolve(ctx, "acme", call.Agent{Phone: "+918586848544"})
	require.NoError(t, err, "indexes restored too")
	assert.Equal(t, "111", got.CRMUserID)
	_, err = s.Resolve(ctx, "acme", call.Agent{Email: "ravi@example.com"})
	assert.ErrorIs(t, err, mapping.ErrNotFound, "the deleted mapping stays deleted")
	ghost, err := s.List(ctx, "ghost")
	require.NoError(t, err)
	assert.Empty(t, ghost)

	// --tenant: only that tenant is touched.
	require.NoError(t, s.Flush(ctx, "beta"))
	require.NoError(t, s.Flush(ctx, "acme"))
	st, err = mapping.Rebuild(ctx, k, env.Topics.Mapping, s, "beta")
	require.NoError(t, err)
	assert.Equal(t, []string{"beta"}, st.Tenants)
	acme, _ := s.List(ctx, "acme")
	assert.Empty(t, acme)
	beta, _ := s.List(ctx, "beta")
	assert.Len(t, beta, 1)
}

func norm(ms []call.Mapping) []call.Mapping {
	for i := range ms {
		ms[i].UpdatedAt = ms[i].UpdatedAt.UTC().Round(time.Microsecond)
	}
	return ms
}

func readAll(t *testing.T, env *testenv.Env) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for p := range 3 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: env.Brokers, Topic: env.Topics.Mapping, Partition: p, MaxWait: 100 * time.Millisecond})
		ends, err := env.Kafka(t).EndOffsets(t.Context(), env.Topics.Mapping, []int{p})
		require.NoError(t, err)
		last := ends[p]
		for off := int64(0); off < last; off++ {
			msg, err := r.ReadMessage(t.Context())
			require.NoError(t, err)
			out = append(out, msg)
		}
		r.Close()
	}
	return out
}

// Webhook v2 names an agent by its uuid, with no email: the mapping still resolves it,
// and a changed uuid leaves no stale index behind.
func TestResolveByUUID(t *testing.T) {
	env := testenv.New(t)
	s := mapping.NewStore(env.Redis, env.Prefix)
	ctx := context.Background()
	m := call.Mapping{MyOperatorUserID: "5cd40f6556f2f124", MyOperatorUUID: "uuid-1", CRMUserID: "1001",
		Source: call.MappingManual, Status: call.MappingActive}
	require.NoError(t, s.Put(ctx, "acme", m))
	got, err := s.Resolve(ctx, "acme", call.Agent{ID: "uuid-1"})
	require.NoError(t, err)
	assert.Equal(t, "1001", got.CRMUserID)

	m.MyOperatorUUID = "uuid-2"
	require.NoError(t, s.Put(ctx, "acme", m))
	_, err = s.Resolve(ctx, "acme", call.Agent{ID: "uuid-1"})
	assert.ErrorIs(t, err, mapping.ErrNotFound)
	got, err = s.Resolve(ctx, "acme", call.Agent{ID: "uuid-2"})
	require.NoError(t, err)
	assert.Equal(t, "1001", got.CRMUserID)
}

// Fill restores what Redis lacks and keeps what was changed since the journal read.
func TestFillKeepsNewerMappings(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	s := mapping.NewStore(env.Redis, env.Prefix)
	newer := call.Mapping{MyOperatorUserID: "u1", CRMUserID: "2002", Email: "a@example.com", Source: call.MappingManual, Status: call.MappingActive}
	require.NoError(t, s.Put(ctx, "acme", newer))
	journal := []call.Mapping{
		{MyOperatorUserID: "u1", CRMUserID: "1001", Email: "a@example.com", Source: call.MappingManual, Status: call.MappingActive},
		{MyOperatorUserID: "u2", CRMUserID: "1002", Email: "b@example.com", Phones: []string{"+918586848544"}, Source: call.MappingManual, Status: call.MappingActive},
	}
	n, err := s.Fill(ctx, "acme", journal)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	m, err := s.Resolve(ctx, "acme", call.Agent{Email: "a@example.com"})
	require.NoError(t, err)
	assert.Equal(t, "2002", m.CRMUserID, "the change made since is kept")
	m, err = s.Resolve(ctx, "acme", call.Agent{Phone: "+918586848544"})
	require.NoError(t, err)
	assert.Equal(t, "1002", m.CRMUserID, "restored with its indexes")
}

// LookupPipe answers as Owner and IsAgentPhone do: an agent with an active mapping by
// its id in the pipeline's one round trip with plain commands, others by the script.
func TestLookupPipeResolvesLikeResolve(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	s := mapping.NewStore(env.Redis, env.Prefix)
	pending := call.Mapping{MyOperatorUserID: "u1", CRMUserID: "1001", Email: "a@example.com", Source: call.MappingManual, Status: call.MappingPending}
	active := call.Mapping{MyOperatorUserID: "u2", CRMUserID: "1002", Email: "b@example.com", MyOperatorUUID: "uuid-2",
		Phones: []string{"+918586848544"}, Source: call.MappingManual, Status: call.MappingActive}
	require.NoError(t, s.Put(ctx, "acme", pending))
	require.NoError(t, s.Put(ctx, "acme", active))
	sent := &commandLog{}
	env.Redis.AddHook(sent)
	cases := []struct {
		name    string
		agent   *call.Agent
		caller  string
		want    string // crm user id, "" for none
		isAgent bool
		script  bool // the script was needed: one more round trip (or went in the pipeline)
		byUUID  bool
	}{
		{"by id", &call.Agent{ID: "u2"}, "", "1002", false, false, false},
		{"by id; the caller is an agent", &call.Agent{ID: "u2"}, "+918586848544", "1002", true, false, false},
		{"by id; a customer calls", &call.Agent{ID: "u2"}, "+919711636496", "1002", false, false, false},
		{"by uuid", &call.Agent{ID: "uuid-2"}, "", "1002", false, true, false},
		{"by uuid, said so: the script at once", &call.Agent{ID: "uuid-2"}, "", "1002", false, true, true},
		{"pending id, then email", &call.Agent{ID: "u1", Email: "b@example.com"}, "", "1002", false, true, false},
		{"pending only", &call.Agent{ID: "u1"}, "+918586848544", "", true, true, false},
		{"unknown id, then phone", &call.Agent{ID: "nobody", Phone: "+918586848544"}, "", "1002", false, true, false},
		{"by phone; the caller is an agent", &call.Agent{Phone: "+918586848544"}, "+918586848544", "1002", true, true, false},
		{"no agent", nil, "+919711636496", "", false, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sent.reset()
			p := env.Redis.Pipeline()
			get := s.LookupPipe(ctx, p, "acme", tc.agent, tc.caller, tc.byUUID)
			_, _ = p.Exec(ctx)
			m, isAgent, err := get()
			assert.Equal(t, tc.isAgent, isAgent)
			assert.Equal(t, tc.script, sent.script(), "script sent: %v", sent.names())
			if tc.byUUID {
				assert.NotContains(t, sent.names(), "hget", "one round trip: the script alone")
			}
			if tc.want == "" {
				assert.ErrorIs(t, err, mapping.ErrNotFound)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, m.CRMUserID)
			var want *call.Mapping
			if tc.agent != nil {
				want, err = s.Resolve(ctx, "acme", *tc.agent)
				require.NoError(t, err)
				assert.Equal(t, want.CRMUserID, m.CRMUserID, "as Resolve")
			}
		})
	}

	// A mapping changed between two lookups is read anew, not from the decoded ones.
	active.CRMUserID = "2002"
	require.NoError(t, s.Put(ctx, "acme", active))
	p := env.Redis.Pipeline()
	get := s.LookupPipe(ctx, p, "acme", &call.Agent{ID: "u2"}, "", false)
	_, _ = p.Exec(ctx)
	m, _, err := get()
	require.NoError(t, err)
	assert.Equal(t, "2002", m.CRMUserID)
}

// commandLog records the names of the commands a client sends.
type commandLog struct {
	mu   sync.Mutex
	sent []string
}

func (c *commandLog) reset() { c.mu.Lock(); c.sent = nil; c.mu.Unlock() }

func (c *commandLog) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sent)
}

func (c *commandLog) script() bool {
	return slices.ContainsFunc(c.names(), func(n string) bool { return strings.HasPrefix(n, "eval") })
}

func (c *commandLog) add(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range cmds {
		c.sent = append(c.sent, cmd.Name())
	}
}

func (c *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.add(cmd); return next(ctx, cmd) }
}

func (c *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.add(cmds...); return next(ctx, cmds) }
}
