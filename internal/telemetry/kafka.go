package telemetry

import (
	"context"
	"strconv"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// headers carries a trace context in a Kafka message's headers (W3C: traceparent,
// tracestate), replacing any it had (a replayed or retried message gets the trace of
// the run that sends it again).
type headers struct{ m *kafka.Message }

func (h headers) Get(key string) string {
	for _, x := range h.m.Headers {
		if x.Key == key {
			return string(x.Value)
		}
	}
	return ""
}

func (h headers) Set(key, value string) {
	for i, x := range h.m.Headers {
		if x.Key == key {
			h.m.Headers[i].Value = []byte(value)
			return
		}
	}
	h.m.Headers = append(h.m.Headers, kafka.Header{Key: key, Value: []byte(value)})
}

func (h headers) Keys() []string {
	out := make([]string, len(h.m.Headers))
	for i, x := range h.m.Headers {
		out[i] = x.Key
	}
	return out
}

// Inject puts ctx's trace context into the message's headers.
func Inject(ctx context.Context, m *kafka.Message) {
	otel.GetTextMapPropagator().Inject(ctx, headers{m})
}

// Extract returns ctx carrying the trace context of the message's headers.
func Extract(ctx context.Context, m kafka.Message) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, headers{&m})
}

// Publish starts a producer span for messages about to be published and puts its
// context in each one's headers; end the span when the broker has answered.
func Publish(ctx context.Context, msgs []kafka.Message) (context.Context, trace.Span) {
	if !tracing.Load() && !trace.SpanContextFromContext(ctx).IsValid() {
		// Tracing off and no trace to carry on: the no-op span's attributes, name and
		// header injection were 1.3 % of serve's CPU per webhook (profile of serve).
		return ctx, trace.SpanFromContext(ctx)
	}
	topic := ""
	if len(msgs) > 0 {
		topic = msgs[0].Topic
	}
	ctx, span := Tracer().Start(ctx, "publish "+topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(semconv.MessagingSystemKafka, semconv.MessagingOperationTypePublish,
			semconv.MessagingDestinationName(topic), semconv.MessagingBatchMessageCount(len(msgs))))
	for i := range msgs {
		Inject(ctx, &msgs[i])
	}
	return ctx, span
}

// End ends a span, recording err.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Consume wraps a message handler: each message is handled in a consumer span that
// continues the trace its headers carry (the webhook's), so the writer's work and its
// CRM requests join the trace of the webhook that brought the call.
func Consume(h func(context.Context, kafka.Message) error) func(context.Context, kafka.Message) error {
	return func(ctx context.Context, m kafka.Message) error {
		ctx, span := Tracer().Start(Extract(ctx, m), "process "+m.Topic, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(semconv.MessagingSystemKafka, semconv.MessagingOperationTypeDeliver,
				semconv.MessagingDestinationName(m.Topic), semconv.MessagingDestinationPartitionID(strconv.Itoa(m.Partition)),
				semconv.MessagingKafkaMessageOffset(int(m.Offset)), attribute.String("messaging.kafka.message.key", string(m.Key))))
		err := h(ctx, m)
		End(span, err)
		return err
	}
}
