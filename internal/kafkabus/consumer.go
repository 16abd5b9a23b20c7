package kafkabus

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Handler handles one message. It returns nil once the message is dealt with —
// written, or handed to the retry or dead-letter topic. An error means it could not
// even be routed (e.g. the cluster is unreachable): the consumer retries the same
// message and never commits past it.
type Handler func(ctx context.Context, m kafka.Message) error

// ConsumerConfig configures one consumer group.
type ConsumerConfig struct {
	GroupID string
	Topics  []string
	// HandleTimeout bounds one message's handling; in-flight handling survives shutdown
	// for up to this long so a write is finished and committed rather than redone.
	HandleTimeout time.Duration
	Log           zerolog.Logger
}

// handleUntilRouted calls h until it returns nil, backing off between attempts; the
// handler's context is work's, bounded by HandleTimeout. It returns false once stop
// ends before the message was dealt with: the partition's next owner gets it again.
func handleUntilRouted(stop, work context.Context, cfg ConsumerConfig, h Handler, m kafka.Message) bool {
	backoff := 200 * time.Millisecond
	for {
		hctx, cancel := context.WithTimeout(work, cfg.HandleTimeout)
		err := h(hctx, m)
		cancel()
		if err == nil {
			return true
		}
		if stop.Err() != nil {
			return false
		}
		cfg.Log.Error().Err(err).Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).
			Msg("message not handled; retrying it before anything after it")
		if !sleep(stop, backoff) {
			return false
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Describe returns "topic/partition@offset" for logs and headers.
func Describe(m kafka.Message) string { return fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset) }
