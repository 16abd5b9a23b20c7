package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/telemetry"
)

// Producer is the one shared writer of a process, configured once: acks from every
// in-sync replica, hash partitioning on the key, and a batch timeout.
//
// kafka-go's Writer sends each partition's batches one at a time, closing a batch when
// it is full or BatchTimeout after its first message (its 1 s default would make every
// synchronous webhook take a second). Too short a timeout cuts, under load, a stream of
// one- or two-message batches that queue behind each other and cost the broker a
// produce request each; DefaultBatchTimeout packs a busy partition's messages into
// fewer requests, at the price of up to that long more for a lone webhook's answer.
type Producer struct {
	w *kafka.Writer
}

// DefaultBatchTimeout is the producer's batch timeout unless configured (measured in
// BENCHMARKS.md section 1: at 32 concurrent webhooks, 10 ms instead of 2 ms halved the
// broker's CPU per webhook and raised serve's throughput by a third).
const DefaultBatchTimeout = 10 * time.Millisecond

// NewProducer builds the shared producer.
func NewProducer(c *Client) *Producer {
	batchTimeout := c.cfg.BatchTimeout
	if batchTimeout <= 0 {
		batchTimeout = DefaultBatchTimeout
	}
	return &Producer{w: &kafka.Writer{
		Addr:                   kafka.TCP(c.Brokers()...),
		Transport:              c.Transport(),
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           batchTimeout,
		BatchSize:              200,
		WriteTimeout:           10 * time.Second,
		MaxAttempts:            5,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        1 * time.Second,
		AllowAutoTopicCreation: false,
	}}
}

// Publish writes the messages and returns once the cluster acknowledged all of them.
// With tracing on, it is a producer span whose context travels in each message's
// headers (W3C traceparent), so the writer's work joins the webhook's trace.
func (p *Producer) Publish(ctx context.Context, msgs ...kafka.Message) error {
	ctx, span := telemetry.Publish(ctx, msgs)
	err := p.w.WriteMessages(ctx, msgs...)
	if err != nil {
		err = fmt.Errorf("kafka: publish: %w", summarize(err))
	}
	telemetry.End(span, err)
	return err
}

// writeErrors is kafka.WriteErrors said once per distinct error: kafka-go's own text
// repeats the error for every message (hundreds of copies for one spool batch).
type writeErrors struct{ kafka.WriteErrors }

func summarize(err error) error {
	var we kafka.WriteErrors
	if !errors.As(err, &we) {
		return err
	}
	return writeErrors{we}
}

func (e writeErrors) Error() string {
	counts := map[string]int{}
	var order []string
	for _, err := range e.WriteErrors {
		if err == nil {
			continue
		}
		s := err.Error()
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%s (×%d)", s, counts[s])
	}
	return fmt.Sprintf("%d of %d messages not written: %s", e.Count(), len(e.WriteErrors), strings.Join(parts, "; "))
}

// Unwrap lets errors.Is/As see each message's error and kafka.WriteErrors itself.
func (e writeErrors) Unwrap() []error {
	out := []error{e.WriteErrors}
	for _, err := range e.WriteErrors {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Close flushes and closes the writer.
func (p *Producer) Close() error { return p.w.Close() }

// Event builds a message with calltrack's CloudEvents-style headers.
func Event(topic, key, source, tenant, callID string, value []byte, extra ...kafka.Header) kafka.Message {
	now := time.Now().UTC()
	h := []kafka.Header{
		{Key: HeaderID, Value: []byte(NewID())},
		{Key: HeaderType, Value: []byte(topic)},
		{Key: HeaderSource, Value: []byte(source)},
		{Key: HeaderTime, Value: []byte(now.Format(time.RFC3339Nano))},
		{Key: HeaderTenant, Value: []byte(tenant)},
	}
	if callID != "" {
		h = append(h, kafka.Header{Key: HeaderCallID, Value: []byte(callID)})
	}
	return kafka.Message{Topic: topic, Key: []byte(key), Value: value, Headers: append(h, extra...), Time: now}
}

// Header returns the value of the last header named key, or "".
func Header(m kafka.Message, key string) string {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return string(m.Headers[i].Value)
		}
	}
	return ""
}

// WithHeaders returns the headers of m with the given ones set (replacing same keys).
func WithHeaders(m kafka.Message, set ...kafka.Header) []kafka.Header {
	out := make([]kafka.Header, 0, len(m.Headers)+len(set))
	for _, h := range m.Headers {
		replaced := false
		for _, s := range set {
			if s.Key == h.Key {
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, h)
		}
	}
	return append(out, set...)
}
