package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/dlq"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/trace"
)

// The on-call story of issue 6: a CRM rejects calls for a while so they land in the DLQ;
// once it is fixed, a dry run reports them and writes nothing, the replay writes each
// missing call once with its owner, replaying the whole call-log topic adds nothing, an
// empty window ends at once, a writer group can be rewound only when stopped, and the
// trace tells the story.
func TestReplayRedrivesDeadLetteredCalls(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.mapAgent(sumit.id, "1001", sumit.email)
	s.mapAgent(priya.id, "1002", priya.email)
	before := time.Now().Add(-time.Second)
	post := func(a agent) string {
		uid := newUID()
		r := s.postForm("aftercall", afterCall(callSpec{uid: uid, status: 1, legs: []leg{{agents: []agent{a}, answered: true}}}), token)
		require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
		return uid
	}
	written := post(sumit)
	s.waitRecords(written, 1, within)

	// The CRM rejects every write: the calls are dead-lettered.
	require.NoError(t, s.kylas.SetFaults(sandboxFaults(1, 400)))
	owners := map[string]int64{}
	var failed []string
	for _, a := range []agent{sumit, priya, sumit} {
		uid := post(a)
		failed = append(failed, uid)
		owners[uid] = map[agent]int64{sumit: 1001, priya: 1002}[a]
	}
	for _, uid := range failed {
		s.waitStatus(uid, "dead_lettered", within)
	}
	require.NoError(t, s.kylas.SetFaults(sandboxFaults(0, 0)))
	require.Len(t, s.kylas.Records(), 1)

	sum, err := dlq.Summarize(t.Context(), dlq.Options{Kafka: s.app.Kafka, Topics: s.env.Topics})
	require.NoError(t, err)
	assert.Equal(t, 3, sum.Total)
	assert.Equal(t, map[string]int{"crm_rejected": 3}, sum.ByReason)

	base := replay.Options{Kafka: s.app.Kafka, Publisher: s.app.Producer, Topics: s.env.Topics, Trace: s.app.Trace}
	since, err := replay.ParseTime("1h", time.Now())
	require.NoError(t, err)
	logEnd := func() int64 {
		parts, err := s.app.Kafka.Partitions(t.Context(), s.env.Topics.Log)
		require.NoError(t, err)
		end, err := s.app.Kafka.EndOffsets(t.Context(), s.env.Topics.Log, parts)
		require.NoError(t, err)
		var n int64
		for _, e := range end {
			n += e
		}
		return n
	}

	// --topic calltrack.call.dlq.v1 --since 1h --dry-run
	o := base
	o.Topic, o.Window, o.DryRun = s.env.Topics.DLQ, replay.Window{Since: since}, true
	var out bytes.Buffer
	endBefore := logEnd()
	res, err := replay.Run(t.Context(), o, &out)
	require.NoError(t, err)
	assert.Equal(t, "would replay 3 messages", lastLine(out.String()))
	assert.Equal(t, map[string]int{tenantID: 3}, res.ByTenant)
	assert.Equal(t, map[string]int{"crm_rejected": 3}, res.ByReason)
	assert.Equal(t, map[string]int{"log": 3}, res.ByType)
	assert.Contains(t, out.String(), "by tenant:\n  acme 3\nby type:\n  log 3\nby reason:\n  crm_rejected 3\n")
	assert.Equal(t, endBefore, logEnd(), "a dry run publishes nothing")
	assert.Len(t, s.kylas.Records(), 1, "a dry run writes nothing")

	// The real replay writes each missing call once, with its owner.
	o.DryRun = false
	out.Reset()
	_, err = replay.Run(t.Context(), o, &out)
	require.NoError(t, err)
	assert.Equal(t, "replayed 3 messages", lastLine(out.String()))
	for _, uid := range failed {
		recs := s.waitRecords(uid, 1, within)
		assert.Equal(t, owners[uid], recs[0].Owner.ID, "owner of %s", uid)
		s.waitStatus(uid, "written", within)
	}
	assert.Len(t, s.kylas.Records(), 4)

	// Replaying the whole call-log topic again adds no record.
	dup := func() float64 {
		return testutil.ToFloat64(s.app.Metrics.WriterOutcomes.WithLabelValues(tenantID, "log", "duplicate"))
	}
	dups := dup()
	o = base
	o.Topic = "log"
	out.Reset()
	res, err = replay.Run(t.Context(), o, &out)
	require.NoError(t, err)
	assert.Equal(t, "replayed 7 messages", lastLine(out.String()), "4 published + 3 replayed call logs")
	assert.Equal(t, map[string]int{s.env.Topics.Log: 7}, res.ByTarget)
	waitFor(t, "the writer consumed the replayed call logs", func() bool { return dup() >= dups+7 })
	assert.Len(t, s.kylas.Records(), 4, "no CRM record added")
	for _, uid := range append(failed, written) {
		assert.Len(t, s.records(uid), 1, "CRM records of %s", uid)
	}

	// A window with nothing in it ends at once with a zero summary.
	o = base
	o.Topic, o.Window = "dlq", replay.Window{Since: time.Now()}
	out.Reset()
	start := time.Now()
	res, err = replay.Run(t.Context(), o, &out)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Zero(t, res.Read)
	assert.Equal(t, "replayed 0 messages", lastLine(out.String()))

	// The trace tells the story.
	tr, err := s.app.Trace.Get(t.Context(), tenantID, failed[1])
	require.NoError(t, err)
	var story bytes.Buffer
	trace.Render(&story, tr)
	text := story.String()
	assert.Contains(t, text, "status   written\nowner    CRM user 1002\n")
	for _, stage := range []string{"dead_lettered", "replayed", "written"} {
		assert.Contains(t, text, " "+stage+" ", "stage %s in\n%s", stage, text)
	}
	assert.Less(t, strings.Index(text, " dead_lettered "), strings.Index(text, " replayed "))
	assert.Less(t, strings.Index(text, " replayed "), strings.LastIndex(text, " written "))

	// groups reset: refused while the writers run, done once they are stopped; the writer
	// then re-reads the whole topic and writes nothing twice.
	_, err = s.app.Kafka.ResetGroup(t.Context(), s.group, s.env.Topics.Log, before, false)
	require.Error(t, err)
	assert.True(t, errors.Is(err, kafkabus.ErrGroupActive), "%v", err)
	s.stopWriters()
	waitFor(t, "the writer group is empty", func() bool {
		g, err := s.app.Kafka.DescribeGroup(t.Context(), s.group)
		return err == nil && len(g.Members) == 0
	})
	reset, err := s.app.Kafka.ResetGroup(t.Context(), s.group, s.env.Topics.Log, before, false)
	require.NoError(t, err)
	var rewound int64
	for _, p := range reset.Partitions {
		assert.EqualValues(t, 0, p.To, "partition %d back to its start", p.Partition)
		rewound += p.From - p.To
	}
	assert.Positive(t, rewound)
	dups = dup()
	s.startWriter()
	// 4 published + 3 replayed + 7 replayed again, all read again.
	waitFor(t, "the restarted writer re-read the call-log topic", func() bool { return dup() >= dups+14 })
	assert.Len(t, s.kylas.Records(), 4, "no CRM record added")
}

// "A mapping was wrong": calls dead-lettered under a wrong owner are replayed with
// --reattribute once the mapping is fixed, and land under the right owner.
func TestReplayReattributesAfterMappingFix(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.mapAgent(priya.id, "9999", priya.email) // the wrong CRM user
	require.NoError(t, s.kylas.SetFaults(sandboxFaults(1, 400)))
	uid := newUID()
	r := s.postForm("aftercall", afterCall(callSpec{uid: uid, status: 1, legs: []leg{{agents: []agent{priya}, answered: true}}}), token)
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	s.waitStatus(uid, "dead_lettered", within)
	s.mapAgent(priya.id, "1002", priya.email) // fixed
	require.NoError(t, s.kylas.SetFaults(sandboxFaults(0, 0)))

	var out bytes.Buffer
	res, err := replay.Run(t.Context(), replay.Options{Kafka: s.app.Kafka, Publisher: s.app.Producer, Topics: s.env.Topics,
		Topic: "dlq", Filter: replay.Filter{Tenants: []string{tenantID}, CallIDs: []string{uid}}, Reattribute: true}, &out)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Reattributed)
	assert.Equal(t, "replayed 1 messages", lastLine(out.String()))
	recs := s.waitRecords(uid, 1, within)
	assert.EqualValues(t, 1002, recs[0].Owner.ID, "attributed with the fixed mapping")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
