package kafkabus

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Producer is the one shared writer of a process, configured once: acks from every
// in-sync replica, hash partitioning on the key, and a short batch timeout (kafka-go's
// 1 s default would make every synchronous webhook take a second).
type Producer struct {
	w *kafka.Writer
}

// NewProducer builds the shared producer.
func NewProducer(c *Client) *Producer {
	return &Producer{w: &kafka.Writer{
		Addr:                   kafka.TCP(c.Brokers()...),
		Transport:              c.Transport(),
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           2 * time.Millisecond,
		BatchSize:              200,
		WriteTimeout:           10 * time.Second,
		MaxAttempts:            5,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        1 * time.Second,
		AllowAutoTopicCreation: false,
	}}
}

// Publish writes the messages and returns once the cluster acknowledged all of them.
func (p *Producer) Publish(ctx context.Context, msgs ...kafka.Message) error {
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("kafka: publish: %w", err)
	}
	return nil
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
