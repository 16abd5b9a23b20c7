package replay_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
)

// BenchmarkReplay measures a replay of 20,000 dead-lettered call logs (1 KiB each) as
// `calltrack replay` runs it — traces updated, acks=all — on the broker and Redis of
// CALLTRACK_TEST_KAFKA_BROKERS / CALLTRACK_TEST_REDIS_ADDR. Target (issue 14): ≥ 20k
// msgs/s on a 2-core box; figures in BENCHMARKS.md.
//
//	go test -run '^$' -bench Replay -benchtime 3x ./internal/replay/
func BenchmarkReplay(b *testing.B) {
	f := newFixture(b)
	const n = 20000
	value := bytes.Repeat([]byte("x"), 1024)
	var msgs []kafka.Message
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		msgs = append(msgs, kafkabus.Event(f.topics.DLQ, "acme:"+id, "bench", "acme", id, value,
			kafka.Header{Key: kafkabus.HeaderOrigTopic, Value: []byte(f.topics.Log)},
			kafka.Header{Key: kafkabus.HeaderReason, Value: []byte("crm_rejected")}))
	}
	for i := 0; i < n; i += 500 {
		require.NoError(b, f.p.Publish(b.Context(), msgs[i:i+500]...))
	}
	tr := trace.New(f.env.Redis, f.env.Prefix)
	b.ResetTimer()
	for range b.N {
		for _, dry := range []bool{true, false} {
			start, cpu0 := time.Now(), testenv.CPUTime()
			sum, err := replay.Run(b.Context(), f.opts(replay.Options{Topic: "dlq", DryRun: dry, Trace: tr}), &bytes.Buffer{})
			require.NoError(b, err)
			require.Equal(b, n, sum.Replayed)
			name := map[bool]string{true: "dry-", false: ""}[dry]
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), name+"msgs/s")
			// Messages per CPU second of this process: steadier than wall time on a shared box.
			b.ReportMetric(float64(n)/(testenv.CPUTime()-cpu0).Seconds(), name+"msgs/cpu-s")
		}
	}
}
