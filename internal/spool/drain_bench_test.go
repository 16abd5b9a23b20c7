package spool

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/testenv"
)

// BenchmarkDrain measures the drain rate after an outage: b.N spooled deliveries (a
// call log and a recording event of 1.5 KB each) forwarded to Kafka, against the
// baseline of publishing the same messages straight from memory in the same batches.
// With CALLTRACK_TEST_KAFKA_BROKERS it runs against that broker.
//
//	go test -run '^$' -bench Drain -benchtime 2000x ./internal/spool/
func BenchmarkDrain(b *testing.B) {
	env := testenv.New(b)
	p := kafkabus.NewProducer(env.Kafka(b))
	b.Cleanup(func() { _ = p.Close() })
	ctx := context.Background()
	val := []byte(strings.Repeat("x", 1500))
	delivery := func(i int) []kafka.Message {
		k := []byte(fmt.Sprintf("acme:call.%d", i))
		return []kafka.Message{{Topic: env.Topics.Log, Key: k, Value: val}, {Topic: env.Topics.Recording, Key: k, Value: val}}
	}
	// Metadata and connections warm, as after the first drain attempt.
	if err := p.Publish(ctx, delivery(-1)...); err != nil {
		b.Fatal(err)
	}
	const batch = 200 // the Drainer's default

	b.Run("baseline=publish", func(b *testing.B) {
		for i := 0; i < b.N; i += batch {
			var msgs []kafka.Message
			for j := i; j < min(i+batch, b.N); j++ {
				msgs = append(msgs, delivery(j)...)
			}
			if err := p.Publish(ctx, msgs...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	})
	b.Run("spool=drain", func(b *testing.B) {
		s, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for i := 0; i < b.N; i++ {
			if err := s.Append(ctx, delivery(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		n, err := (&Drainer{Spool: s, Kafka: p, Batch: batch, Log: zerolog.Nop()}).Drain(ctx)
		if err != nil || n != b.N {
			b.Fatalf("drained %d of %d: %v", n, b.N, err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	})
}
