package backlog_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/backlog"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/testenv"
)

// On a real broker: a group that handled the old records lags by the new ones; a group
// that committed nothing lags by all; the DLQ counts what was ever appended.
func TestPollerExportsLagAndDeadLetters(t *testing.T) {
	env := testenv.New(t)
	k := env.Kafka(t)
	p := kafkabus.NewProducer(k)
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	now := time.Now()
	var msgs []kafka.Message
	for i := range 7 {
		at := now.Add(-time.Hour) // 3 old records
		if i >= 3 {
			at = now // 4 new ones
		}
		msgs = append(msgs, kafka.Message{Topic: env.Topics.Log, Key: []byte{byte('a' + i)}, Value: []byte("{}"), Time: at})
	}
	msgs = append(msgs, kafka.Message{Topic: env.Topics.DLQ, Key: []byte("x"), Value: []byte("{}")},
		kafka.Message{Topic: env.Topics.DLQ, Key: []byte("y"), Value: []byte("{}")})
	require.NoError(t, p.Publish(ctx, msgs...))
	// The writers handled the old records: their group's offsets are past them. (A new
	// group's coordinator may take a moment to load on a busy broker.)
	testenv.Eventually(t, 30*time.Second, "group offsets committed", func() bool {
		_, err := k.ResetGroup(ctx, "writers"+env.Suffix, env.Topics.Log, now.Add(-30*time.Minute), false)
		return err == nil
	})

	m := metrics.New()
	poller := &backlog.Poller{Kafka: k, Metrics: m.Backlog, Log: zerolog.Nop(), Interval: 50 * time.Millisecond,
		Groups: []backlog.Group{
			{ID: "writers" + env.Suffix, Topics: []string{env.Topics.Log}},
			{ID: "never-ran" + env.Suffix, Topics: []string{env.Topics.Log}},
		},
		Counted: []string{env.Topics.DLQ}}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- poller.Run(rctx) }()
	want := `
# HELP calltrack_consumer_lag Records of the topic the consumer group has not handled yet (sum over partitions), at the last poll.
# TYPE calltrack_consumer_lag gauge
calltrack_consumer_lag{group="never-ran` + env.Suffix + `",topic="` + env.Topics.Log + `"} 7
calltrack_consumer_lag{group="writers` + env.Suffix + `",topic="` + env.Topics.Log + `"} 4
# HELP calltrack_topic_appended_total Records ever appended to the topic (sum of partition end offsets): its growth is the dead letters or rejected payloads.
# TYPE calltrack_topic_appended_total counter
calltrack_topic_appended_total{topic="` + env.Topics.DLQ + `"} 2
`
	testenv.Eventually(t, 20*time.Second, "lag and dead letters exported", func() bool {
		return testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "calltrack_consumer_lag", "calltrack_topic_appended_total") == nil
	})
	stop()
	require.NoError(t, <-done)
}

// fakeKafka fails on demand.
type fakeKafka struct{ err error }

func (f *fakeKafka) Lag(context.Context, string, string) ([]kafkabus.PartitionLag, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []kafkabus.PartitionLag{{Partition: 0, Lag: 5}, {Partition: 1, Lag: 6}}, nil
}

func (f *fakeKafka) EndOffsetSum(context.Context, string) (int64, error) { return 9, f.err }

// A failed poll drops the values rather than keep a stale lag, and is counted.
func TestPollerDropsValuesWhenKafkaFails(t *testing.T) {
	m := metrics.New()
	f := &fakeKafka{}
	p := &backlog.Poller{Kafka: f, Metrics: m.Backlog, Log: zerolog.New(io.Discard),
		Groups: []backlog.Group{{ID: "g", Topics: []string{"t"}}}, Counted: []string{"dlq"}}
	s, err := p.Poll(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(11), s.Lag[[2]string{"g", "t"}])
	assert.Equal(t, int64(9), s.Appended["dlq"])

	f.err = errors.New("broker down")
	p.Interval = 10 * time.Millisecond
	m.Backlog.Set(s)
	require.Equal(t, 2, testutil.CollectAndCount(m.Backlog))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testenv.Eventually(t, 5*time.Second, "values dropped, failure counted", func() bool {
		return testutil.CollectAndCount(m.Backlog) == 0 && pollErrors(t, m) >= 1
	})
	cancel()
	require.NoError(t, <-done)
}

func pollErrors(t *testing.T, m *metrics.Metrics) float64 {
	fams, err := m.Registry.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == "calltrack_backlog_poll_errors_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
