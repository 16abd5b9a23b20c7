package replay_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
)

// fixture is a DLQ as the writer leaves it, plus the Kafka and topics around it.
type fixture struct {
	env    *testenv.Env
	k      *kafkabus.Client
	p      *kafkabus.Producer
	topics kafkabus.Topics
}

func newFixture(t testing.TB) *fixture {
	env := testenv.New(t)
	k := env.Kafka(t)
	p := kafkabus.NewProducer(k)
	t.Cleanup(func() { _ = p.Close() })
	return &fixture{env: env, k: k, p: p, topics: env.Topics}
}

// deadLetter publishes a message the way the writer's deadLetter does.
func (f *fixture) deadLetter(t *testing.T, at time.Time, tenant, callID, origTopic, reason string) {
	t.Helper()
	value := `{"tenant":"` + tenant + `","call_id":"` + callID + `","log_id":"log-` + callID + `"}`
	m := kafkabus.Event(f.topics.DLQ, tenant+":"+callID, "calltrack/ingest", tenant, callID, []byte(value),
		kafka.Header{Key: kafkabus.HeaderOrigTopic, Value: []byte(origTopic)},
		kafka.Header{Key: kafkabus.HeaderOrigPart, Value: []byte("1")},
		kafka.Header{Key: kafkabus.HeaderOrigOff, Value: []byte("7")},
		kafka.Header{Key: kafkabus.HeaderAttempts, Value: []byte("1")},
		kafka.Header{Key: kafkabus.HeaderError, Value: []byte("kylas: HTTP 400")},
		kafka.Header{Key: kafkabus.HeaderStatus, Value: []byte("400")},
		kafka.Header{Key: kafkabus.HeaderReason, Value: []byte(reason)})
	m.Time = at
	require.NoError(t, f.p.Publish(t.Context(), m))
}

// all reads every message now on topic.
func (f *fixture) all(t *testing.T, topic string) []kafka.Message {
	t.Helper()
	parts, err := f.k.Partitions(t.Context(), topic)
	require.NoError(t, err)
	end, err := f.k.EndOffsets(t.Context(), topic, parts)
	require.NoError(t, err)
	var out []kafka.Message
	for _, p := range parts {
		if end[p] == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.env.Brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		for off := int64(0); off < end[p]; off++ {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err)
			out = append(out, m)
		}
		cancel()
		r.Close()
	}
	return out
}

func (f *fixture) opts(o replay.Options) replay.Options {
	o.Kafka, o.Publisher, o.Topics = f.k, f.p, f.topics
	return o
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestReplayDLQ(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	f.deadLetter(t, now.Add(-3*time.Hour), "acme", "c0", f.topics.Log, "crm_rejected") // outside --since 1h
	f.deadLetter(t, now.Add(-30*time.Minute), "acme", "c1", f.topics.Log, "crm_rejected")
	f.deadLetter(t, now.Add(-20*time.Minute), "acme", "c2", f.topics.Log, "retries_exhausted")
	f.deadLetter(t, now.Add(-10*time.Minute), "acme", "c3", f.topics.Recording, "crm_rejected")
	f.deadLetter(t, now.Add(-5*time.Minute), "beta", "c4", f.topics.Log, "crm_rejected")
	lastHour := replay.Window{Since: now.Add(-time.Hour)}

	t.Run("dry run counts and writes nothing", func(t *testing.T) {
		var out bytes.Buffer
		sum, err := replay.Run(t.Context(), f.opts(replay.Options{Topic: "dlq", Window: lastHour, DryRun: true}), &out)
		require.NoError(t, err)
		assert.Equal(t, 4, sum.Matched)
		assert.Equal(t, 4, sum.Replayed)
		assert.Equal(t, map[string]int{"acme": 3, "beta": 1}, sum.ByTenant)
		assert.Equal(t, map[string]int{"crm_rejected": 3, "retries_exhausted": 1}, sum.ByReason)
		assert.Equal(t, map[string]int{"log": 3, "recording": 1}, sum.ByType)
		assert.Equal(t, map[string]int{f.topics.Log: 3, f.topics.Recording: 1}, sum.ByTarget)
		assert.Equal(t, "would replay 4 messages", lastLine(out.String()))
		assert.Contains(t, out.String(), "by tenant:\n  acme 3\n  beta 1\n")
		assert.Empty(t, f.all(t, f.topics.Log), "a dry run writes nothing")
		assert.Empty(t, f.all(t, f.topics.Recording))
	})

	t.Run("filters", func(t *testing.T) {
		cases := []struct {
			name   string
			w      replay.Window
			filter replay.Filter
			want   int
		}{
			{"tenant and reason", lastHour, replay.Filter{Tenants: []string{"acme"}, Reasons: []string{"crm_rejected"}}, 2},
			{"call id", replay.Window{}, replay.Filter{CallIDs: []string{"c2"}}, 1},
			{"log id alias", replay.Window{}, replay.Filter{CallIDs: []string{"log-c0"}}, 1},
			{"type by kind", replay.Window{}, replay.Filter{Types: []string{"recording"}}, 1},
			{"type by topic name", replay.Window{}, replay.Filter{Types: []string{kafkabus.TopicLog}}, 4},
			{"until", replay.Window{Until: now.Add(-time.Hour)}, replay.Filter{}, 1},
			{"nothing matches", replay.Window{}, replay.Filter{Tenants: []string{"nobody"}}, 0},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var out bytes.Buffer
				sum, err := replay.Run(t.Context(), f.opts(replay.Options{Topic: f.topics.DLQ, Window: tc.w, Filter: tc.filter, DryRun: true}), &out)
				require.NoError(t, err)
				assert.Equal(t, tc.want, sum.Replayed)
				assert.Equal(t, "would replay "+strconv.Itoa(tc.want)+" messages", lastLine(out.String()))
			})
		}
	})

	t.Run("offset window", func(t *testing.T) {
		// c0 was published first: offset 0 of its partition.
		var part int
		for _, m := range f.all(t, f.topics.DLQ) {
			if kafkabus.Header(m, kafkabus.HeaderCallID) == "c0" {
				part = m.Partition
				require.EqualValues(t, 0, m.Offset)
			}
		}
		sum, err := replay.Run(t.Context(), f.opts(replay.Options{Topic: "dlq", DryRun: true,
			Window: replay.Window{Partitions: []int{part}, Offsets: &replay.OffsetRange{From: 0, To: 0}}}), &bytes.Buffer{})
		require.NoError(t, err)
		assert.Equal(t, 1, sum.Read)
		assert.Equal(t, map[string]int{"acme": 1}, sum.ByTenant)
		_, err = replay.Run(t.Context(), f.opts(replay.Options{Topic: "dlq", DryRun: true, Window: replay.Window{Partitions: []int{9}}}), &bytes.Buffer{})
		assert.ErrorIs(t, err, replay.ErrBadWindow)
	})

	t.Run("replay to the original topics", func(t *testing.T) {
		tr := trace.New(f.env.Redis, f.env.Prefix)
		var out bytes.Buffer
		sum, err := replay.Run(t.Context(), f.opts(replay.Options{Topic: "dlq", Window: lastHour, Trace: tr, Rate: 20}), &out)
		require.NoError(t, err)
		assert.Equal(t, "replayed 4 messages", lastLine(out.String()))
		assert.GreaterOrEqual(t, sum.Took, 140*time.Millisecond, "--rate 20/s spaces 4 messages out")
		logs := f.all(t, f.topics.Log)
		require.Len(t, logs, 3)
		recs := f.all(t, f.topics.Recording)
		require.Len(t, recs, 1)
		m := recs[0]
		assert.Equal(t, "acme:c3", string(m.Key))
		assert.Equal(t, "acme", kafkabus.Header(m, kafkabus.HeaderTenant))
		assert.Equal(t, "c3", kafkabus.Header(m, kafkabus.HeaderCallID))
		assert.NotEmpty(t, kafkabus.Header(m, kafkabus.HeaderID))
		assert.Equal(t, "true", kafkabus.Header(m, replay.HeaderReplayed))
		assert.Regexp(t, `^`+f.topics.DLQ+`/\d@\d+$`, kafkabus.Header(m, replay.HeaderReplayedFrom))
		_, err = time.Parse(time.RFC3339, kafkabus.Header(m, replay.HeaderReplayedAt))
		assert.NoError(t, err)
		for _, h := range []string{kafkabus.HeaderAttempts, kafkabus.HeaderReason, kafkabus.HeaderError, kafkabus.HeaderStatus,
			kafkabus.HeaderDueAt, kafkabus.HeaderOrigTopic, kafkabus.HeaderOrigPart, kafkabus.HeaderOrigOff} {
			assert.Empty(t, kafkabus.Header(m, h), "routing header %s dropped", h)
		}
		got, err := tr.Get(t.Context(), "acme", "c1")
		require.NoError(t, err)
		require.NotEmpty(t, got.Stages)
		assert.Equal(t, "replayed", got.Stages[len(got.Stages)-1].Stage)
		assert.Contains(t, got.Stages[len(got.Stages)-1].Detail, "to "+f.topics.Log)

		// A plain topic replays onto itself; routing headers never appear.
		out.Reset()
		sum, err = replay.Run(t.Context(), f.opts(replay.Options{Topic: "log"}), &out)
		require.NoError(t, err)
		assert.Equal(t, 3, sum.Replayed)
		assert.Equal(t, map[string]int{f.topics.Log: 3}, sum.ByTarget)
		assert.Empty(t, sum.ByReason)
		assert.Len(t, f.all(t, f.topics.Log), 6)
	})

	t.Run("an empty window ends at once", func(t *testing.T) {
		var out bytes.Buffer
		start := time.Now()
		sum, err := replay.Run(t.Context(), f.opts(replay.Options{Topic: "dlq", Window: replay.Window{Since: time.Now()}}), &out)
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 3*time.Second)
		assert.Zero(t, sum.Read)
		assert.Zero(t, sum.Replayed)
		assert.Equal(t, f.topics.DLQ+", since "+sum.Window.Since.UTC().Format(time.RFC3339)+": read 0 messages, 0 matched\nreplayed 0 messages\n", out.String())
	})

	t.Run("refused targets and sources", func(t *testing.T) {
		for _, to := range []string{"dlq", "retry", "mapping", "rejected"} {
			_, err := replay.Run(t.Context(), f.opts(replay.Options{Topic: "log", To: to}), &bytes.Buffer{})
			assert.ErrorIs(t, err, replay.ErrBadTarget, to)
		}
		_, err := replay.Run(t.Context(), f.opts(replay.Options{Topic: "log", To: "no.such.topic" + f.env.Suffix}), &bytes.Buffer{})
		assert.ErrorIs(t, err, kafkabus.ErrUnknownTopic)
		_, err = replay.Run(t.Context(), f.opts(replay.Options{Topic: "no.such.topic" + f.env.Suffix}), &bytes.Buffer{})
		assert.ErrorIs(t, err, kafkabus.ErrUnknownTopic)
	})
}

// A routed message without its original topic is skipped, and says why.
func TestReplaySkipsWhatHasNoTarget(t *testing.T) {
	f := newFixture(t)
	m := kafkabus.Event(f.topics.DLQ, "acme:c9", "test", "acme", "c9", []byte(`{}`),
		kafka.Header{Key: kafkabus.HeaderReason, Value: []byte("undecodable")})
	require.NoError(t, f.p.Publish(t.Context(), m))
	var out bytes.Buffer
	sum, err := replay.Run(t.Context(), f.opts(replay.Options{Topic: "dlq"}), &out)
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Matched)
	assert.Zero(t, sum.Replayed)
	assert.Contains(t, out.String(), "skipped:\n  no original_topic header (give --to) 1\n")
	// With --to it goes there.
	sum, err = replay.Run(t.Context(), f.opts(replay.Options{Topic: "dlq", To: "log"}), &out)
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Replayed)
	assert.Len(t, f.all(t, f.topics.Log), 1)
}

// --reattribute replays call logs without the owner resolved at ingest; recordings and
// other fields are left as they are.
func TestReplayReattribute(t *testing.T) {
	f := newFixture(t)
	logValue := `{"tenant":"acme","call_id":"c1","agent":{"id":"5cd40f6556f2f125"},"owner":{"crm_user_id":"1002"}}`
	m := kafkabus.Event(f.topics.DLQ, "acme:c1", "test", "acme", "c1", []byte(logValue),
		kafka.Header{Key: kafkabus.HeaderOrigTopic, Value: []byte(f.topics.Log)})
	rec := kafkabus.Event(f.topics.DLQ, "acme:c1", "test", "acme", "c1", []byte(`{"tenant":"acme","call_id":"c1","owner":"kept"}`),
		kafka.Header{Key: kafkabus.HeaderOrigTopic, Value: []byte(f.topics.Recording)})
	require.NoError(t, f.p.Publish(t.Context(), m, rec))
	var out bytes.Buffer
	sum, err := replay.Run(t.Context(), f.opts(replay.Options{Topic: "dlq", Reattribute: true}), &out)
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Reattributed)
	assert.Contains(t, out.String(), "owner dropped from 1 call logs: the writer attributes them with the current mappings\nreplayed 2 messages\n")
	logs := f.all(t, f.topics.Log)
	require.Len(t, logs, 1)
	assert.JSONEq(t, `{"tenant":"acme","call_id":"c1","agent":{"id":"5cd40f6556f2f125"}}`, string(logs[0].Value))
	recs := f.all(t, f.topics.Recording)
	require.Len(t, recs, 1)
	assert.Contains(t, string(recs[0].Value), `"owner":"kept"`)
}
