package dlq_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/dlq"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/testenv"
)

func TestSummaryAndShow(t *testing.T) {
	env := testenv.New(t)
	k := env.Kafka(t)
	p := kafkabus.NewProducer(k)
	defer p.Close()
	now := time.Now()
	dead := func(age time.Duration, tenant, callID, reason, errText string) kafka.Message {
		m := kafkabus.Event(env.Topics.DLQ, tenant+":"+callID, "calltrack/ingest", tenant, callID,
			[]byte(`{"tenant":"`+tenant+`","call_id":"`+callID+`","caller_number":"+919711636496"}`),
			kafka.Header{Key: kafkabus.HeaderOrigTopic, Value: []byte(env.Topics.Log)},
			kafka.Header{Key: kafkabus.HeaderAttempts, Value: []byte("1")},
			kafka.Header{Key: kafkabus.HeaderError, Value: []byte(errText)},
			kafka.Header{Key: kafkabus.HeaderReason, Value: []byte(reason)})
		m.Time = now.Add(-age)
		return m
	}
	require.NoError(t, p.Publish(t.Context(),
		dead(10*24*time.Hour, "acme", "c0", "retries_exhausted", "kylas: HTTP 503"),
		dead(3*time.Hour, "acme", "c1", "crm_rejected", "kylas: HTTP 400: invalid owner"),
		dead(20*time.Minute, "acme", "c2", "crm_rejected", "kylas: HTTP 400: invalid owner"),
		dead(10*time.Minute, "beta", "c3", "crm_rejected", "kylas: HTTP 401"),
	))
	o := dlq.Options{Kafka: k, Topics: env.Topics, Now: func() time.Time { return now }}

	s, err := dlq.Summarize(t.Context(), o)
	require.NoError(t, err)
	assert.Equal(t, 4, s.Total)
	assert.Equal(t, map[string]int{"acme": 3, "beta": 1}, s.ByTenant)
	assert.Equal(t, map[string]int{"crm_rejected": 3, "retries_exhausted": 1}, s.ByReason)
	assert.Equal(t, map[string]int{"< 1h": 2, "1h-6h": 1, "> 7d": 1}, s.ByAge)
	assert.Equal(t, map[string]int{"log": 4}, s.ByType)
	var out bytes.Buffer
	s.Print(&out)
	assert.Contains(t, out.String(), env.Topics.DLQ+": 4 messages, oldest ")
	assert.Contains(t, out.String(), "(10d ago), newest ")
	assert.Contains(t, out.String(), "by age:\n  < 1h   2\n  1h-6h  1\n  > 7d   1\n")
	assert.Contains(t, out.String(), "top errors:\n  kylas: HTTP 400: invalid owner 2\n")

	// The same filters as replay.
	o.Filter = replay.Filter{Tenants: []string{"acme"}}
	o.Window = replay.Window{Since: now.Add(-time.Hour)}
	s, err = dlq.Summarize(t.Context(), o)
	require.NoError(t, err)
	assert.Equal(t, 1, s.Total)

	// show: the newest first-limited, oldest of them first, numbers masked.
	out.Reset()
	n, err := dlq.Show(t.Context(), dlq.ShowOptions{Options: dlq.Options{Kafka: k, Topics: env.Topics}, Limit: 2}, &out)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	text := out.String()
	assert.Less(t, strings.Index(text, "call_id:             c2"), strings.Index(text, "call_id:             c3"), text)
	assert.NotContains(t, text, "call_id:             c1")
	assert.Contains(t, text, "reason:              crm_rejected\n")
	assert.Contains(t, text, `"caller_number": "+91******6496"`)
	assert.NotContains(t, text, "9711636496")
	assert.Contains(t, text, "showing 2 of 4 matching messages (the newest; raise --limit")

	out.Reset()
	_, err = dlq.Show(t.Context(), dlq.ShowOptions{Options: dlq.Options{Kafka: k, Topics: env.Topics,
		Filter: replay.Filter{CallIDs: []string{"c3"}}}, Unmask: true, JSON: true}, &out)
	require.NoError(t, err)
	var msg dlq.Message
	require.NoError(t, json.Unmarshal(out.Bytes(), &msg))
	assert.Equal(t, "beta:c3", msg.Key)
	assert.Equal(t, "crm_rejected", msg.Headers["reason"])
	assert.Contains(t, string(msg.Value), "+919711636496", "--unmask shows the number")

	// An empty DLQ says so.
	out.Reset()
	s, err = dlq.Summarize(t.Context(), dlq.Options{Kafka: k, Topics: env.Topics, Topic: "retry"})
	require.NoError(t, err)
	s.Print(&out)
	assert.Equal(t, env.Topics.Retry+": no messages\n", out.String())
}

func TestAgeBucket(t *testing.T) {
	now := time.Now()
	assert.Equal(t, "< 1h", dlq.AgeBucket(now, now.Add(-59*time.Minute)))
	assert.Equal(t, "6h-24h", dlq.AgeBucket(now, now.Add(-7*time.Hour)))
	assert.Equal(t, "1d-7d", dlq.AgeBucket(now, now.Add(-30*time.Hour)))
}
