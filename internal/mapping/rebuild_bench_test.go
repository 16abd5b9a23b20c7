package mapping_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/testenv"
)

// BenchmarkRebuild100k restores 100,000 mappings (4 tenants of 25,000, each with an
// email and a phone) from the journal topic into Redis, on the broker and Redis of
// CALLTRACK_TEST_KAFKA_BROKERS / CALLTRACK_TEST_REDIS_ADDR. Target (issue 14): seconds,
// not minutes; figures in BENCHMARKS.md.
//
//	go test -run '^$' -bench Rebuild -benchtime 3x ./internal/mapping/
func BenchmarkRebuild100k(b *testing.B) {
	env := testenv.New(b)
	k := env.Kafka(b)
	p := kafkabus.NewProducer(k)
	b.Cleanup(func() { _ = p.Close() })
	const n, tenants = 100000, 4
	at := time.Now().UTC()
	batch := make([]kafka.Message, 0, 1000)
	for i := range n {
		tenant, agent := fmt.Sprintf("t%d", i%tenants), fmt.Sprintf("agent%06d", i)
		v, err := json.Marshal(call.Mapping{MyOperatorUserID: agent, CRMUserID: fmt.Sprint(100000 + i),
			Email: agent + "@example.com", Phones: []string{fmt.Sprintf("+9198%08d", i)}, Name: "Agent " + agent,
			Source: call.MappingManual, Status: call.MappingActive, UpdatedAt: at, UpdatedBy: "bench"})
		require.NoError(b, err)
		batch = append(batch, kafka.Message{Topic: env.Topics.Mapping, Key: []byte(tenant + ":" + agent), Value: v})
		if len(batch) == cap(batch) {
			require.NoError(b, p.Publish(b.Context(), batch...))
			batch = batch[:0]
		}
	}
	s := mapping.NewStore(env.Redis, env.Prefix)
	b.ResetTimer()
	for range b.N {
		// The read alone, then the whole rebuild (read again + Redis).
		start := time.Now()
		_, _, err := mapping.ReadJournal(b.Context(), k, env.Topics.Mapping)
		require.NoError(b, err)
		b.ReportMetric(time.Since(start).Seconds(), "s/read")
		start, cpu0 := time.Now(), testenv.CPUTime()
		st, err := mapping.Rebuild(b.Context(), k, env.Topics.Mapping, s)
		require.NoError(b, err)
		require.Equal(b, n, st.Total())
		b.ReportMetric(time.Since(start).Seconds(), "s/rebuild")
		// CPU seconds of this process: on a shared, loaded box a steadier figure than wall time.
		b.ReportMetric((testenv.CPUTime() - cpu0).Seconds(), "cpu-s/rebuild")
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "mappings/s")
	}
	b.StopTimer()
	m, err := s.Get(b.Context(), "t3", "agent099999")
	require.NoError(b, err)
	require.Equal(b, "199999", m.CRMUserID)
}
