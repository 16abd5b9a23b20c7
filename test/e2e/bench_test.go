package e2e

import (
	"net/http"
	"sort"
	"testing"
	"time"
)

// BenchmarkAfterCallWebhook measures a webhook's answer time, Kafka ack included
// (acks=all), through the real HTTP stack: run it against a real broker with
// CALLTRACK_TEST_KAFKA_BROKERS / CALLTRACK_TEST_REDIS_ADDR set. It reports the median
// and p99 besides ns/op; the target is well under 100 ms under normal load.
func BenchmarkAfterCallWebhook(b *testing.B) {
	s := newStack(b, stackOpts{noWriter: true})
	s.mapAgent(sumit.id, "1001", sumit.email)
	payloads := make([]string, b.N)
	for i := range payloads {
		payloads[i] = afterCall(callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}})
	}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := s.postForm("aftercall", payloads[i], token)
		if r.Status != http.StatusOK {
			b.Fatalf("status %d: %v", r.Status, r.Body)
		}
		took = append(took, r.Took)
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}
