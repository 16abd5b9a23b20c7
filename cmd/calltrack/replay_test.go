package main

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/testenv"
)

// cli runs calltrack with args and returns its standard output.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	rerr := run(t.Context(), args)
	os.Stdout = old
	_ = w.Close()
	return <-done, rerr
}

// The on-call commands through the CLI, configured as the services are (CALLTRACK_*).
func TestOnCallCommands(t *testing.T) {
	env := testenv.New(t)
	k := env.Kafka(t)
	t.Setenv("CALLTRACK_KAFKA_BROKERS", strings.Join(env.Brokers, ","))
	t.Setenv("CALLTRACK_REDIS_ADDR", env.RedisAddr)
	t.Setenv("CALLTRACK_REDIS_PREFIX", env.Prefix)
	t.Setenv("CALLTRACK_TOPIC_SUFFIX", env.Suffix)
	t.Setenv("CALLTRACK_TENANTS_FILE", "") // not needed

	p := kafkabus.NewProducer(k)
	defer p.Close()
	m := kafkabus.Event(env.Topics.DLQ, "acme:c1", "calltrack/ingest", "acme", "c1",
		[]byte(`{"tenant":"acme","call_id":"c1","caller_number":"+919711636496"}`),
		kafka.Header{Key: kafkabus.HeaderOrigTopic, Value: []byte(env.Topics.Log)},
		kafka.Header{Key: kafkabus.HeaderReason, Value: []byte("crm_rejected")},
		kafka.Header{Key: kafkabus.HeaderError, Value: []byte("kylas: HTTP 400")})
	require.NoError(t, p.Publish(t.Context(), m))

	out, err := cli(t, "replay", "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "--dry-run")
	assert.Contains(t, out, "calltrack replay --topic dlq --since 1h --dry-run")

	var ue usageError
	_, err = cli(t, "replay", "--since", "1h")
	assert.True(t, errors.As(err, &ue), "no --topic is a usage error: %v", err)
	_, err = cli(t, "replay", "--topic", "dlq", "--since", "yesterday")
	assert.True(t, errors.As(err, &ue), "%v", err)
	_, err = cli(t, "replay", "--topic", "log", "--to", "dlq")
	assert.True(t, errors.As(err, &ue), "%v", err)
	assert.ErrorContains(t, err, "written by the writers only")
	_, err = cli(t, "replay", "--topic", "dlq", "--rate", "fast")
	assert.True(t, errors.As(err, &ue), "%v", err)

	out, err = cli(t, "replay", "--topic", "dlq", "--since", "1h", "--dry-run")
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(out, "by reason:\n  crm_rejected 1\nto topic:\n  "+env.Topics.Log+" 1\nwould replay 1 messages\n"), out)

	out, err = cli(t, "dlq", "summary")
	require.NoError(t, err)
	assert.Contains(t, out, env.Topics.DLQ+": 1 messages")
	assert.Contains(t, out, "by reason:\n  crm_rejected 1\n")

	out, err = cli(t, "dlq", "show", "--tenant", "acme")
	require.NoError(t, err)
	assert.Contains(t, out, `"caller_number": "+91******6496"`)
	assert.Contains(t, out, "showing 1 of 1 matching messages")

	out, err = cli(t, "replay", "--topic", "dlq", "--since", "1h", "--rate", "100/s")
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(out, "replayed 1 messages\n"), out)

	out, err = cli(t, "trace", "acme", "c1")
	require.NoError(t, err)
	assert.Contains(t, out, "call c1 of tenant acme\n")
	assert.Regexp(t, `\+0s\s+replayed\s+log\s+from `+env.Topics.DLQ+`/\d@0 to `+env.Topics.Log, out)
	out, err = cli(t, "trace", "acme", "c1", "--json")
	require.NoError(t, err)
	assert.Contains(t, out, `"call_id": "c1"`)
	_, err = cli(t, "trace", "acme", "nope")
	assert.ErrorContains(t, err, "no trace of call nope of tenant acme")

	group := "cli" + env.Suffix
	out, err = cli(t, "groups", "reset", "--group", group, "--topic", "log", "--to-time", "earliest", "--dry-run")
	require.NoError(t, err)
	assert.Contains(t, out, "would move "+group+"'s offsets on "+env.Topics.Log+" to the log start")
	out, err = cli(t, "groups", "reset", "--group", group, "--topic", "log", "--to-time", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	require.NoError(t, err)
	assert.Regexp(t, `partition \d: none → 0\n`, out)
	out, err = cli(t, "groups", "describe", "--group", group, "--topic", "log")
	require.NoError(t, err)
	assert.Contains(t, out, "0 member(s)")
	assert.Contains(t, out, "  lag 1\n", "the replayed message waits for the group")
}
