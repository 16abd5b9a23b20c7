package route_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/route"
	"github.com/calltrack/calltrack/internal/telemetry"
)

// tracePublisher records the trace each publish is made in (the producer injects it
// into the messages' headers).
type tracePublisher struct {
	mu     sync.Mutex
	traces map[string]string // topic → trace id
}

func (p *tracePublisher) Publish(ctx context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.traces[m.Topic] = telemetry.TraceID(ctx)
	}
	return nil
}

// What the writer routes on — to the retry topic, the dead-letter topic, or deferred —
// is published in the trace the message arrived with, so it stays the webhook's trace.
func TestRoutedMessagesStayInTheirTrace(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(tp); otel.SetTextMapPropagator(prop) })
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	otel.SetTextMapPropagator(propagation.TraceContext{})

	cases := []struct {
		name     string
		result   result
		topic    string
		deferred bool
	}{
		{"retry", result{err: transient}, topics.Retry, false},
		{"dead letter", result{err: permanent}, topics.DLQ, false},
		{"deferred", result{}, topics.Retry, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := &tracePublisher{traces: map[string]string{}}
			h := &route.Handlers{Service: &fakeService{results: []result{tc.result}}, Publisher: pub, Topics: topics,
				Metrics: metrics.New(), Log: zerolog.Nop(),
				Policy: route.Policy{InPlace: 1, InPlaceWait: time.Millisecond, MaxAttempts: 10, Base: time.Second, Cap: time.Minute}}
			ctx, span := telemetry.Tracer().Start(context.Background(), "webhook")
			m := logMsg(t)
			telemetry.Inject(ctx, &m)
			span.End()
			var err error
			if tc.deferred {
				err = h.Defer(context.Background(), m)
			} else {
				err = h.Main()(context.Background(), m)
			}
			require.NoError(t, err)
			require.Contains(t, pub.traces, tc.topic)
			assert.Equal(t, telemetry.TraceID(ctx), pub.traces[tc.topic], "published in the message's trace")
		})
	}
}
