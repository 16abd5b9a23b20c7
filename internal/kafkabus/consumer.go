package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Handler handles one message. It returns nil once the message is dealt with —
// written, or handed to the retry or dead-letter topic. An error means it could not
// even be routed (e.g. the cluster is unreachable): the loop retries the same message
// and never commits past it.
type Handler func(ctx context.Context, m kafka.Message) error

// ConsumerConfig configures one consumer-group loop.
type ConsumerConfig struct {
	GroupID string
	Topics  []string
	// HandleTimeout bounds one message's handling; in-flight handling survives shutdown
	// for up to this long so a write is finished and committed rather than redone.
	HandleTimeout time.Duration
	Log           zerolog.Logger
}

// Consume runs fetch → handle → commit until ctx is cancelled, then leaves the group.
func Consume(ctx context.Context, c *Client, cfg ConsumerConfig, h Handler) error {
	if cfg.GroupID == "" || len(cfg.Topics) == 0 {
		return errors.New("kafka: consumer needs a group id and topics")
	}
	if cfg.HandleTimeout <= 0 {
		cfg.HandleTimeout = 60 * time.Second
	}
	r := newGroupReader(c, cfg)
	defer func() {
		if err := r.Close(); err != nil {
			cfg.Log.Warn().Err(err).Msg("kafka reader close")
		}
	}()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			cfg.Log.Warn().Err(err).Str("group", cfg.GroupID).Msg("kafka fetch failed")
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if !handleUntilRouted(ctx, cfg, h, m) {
			// Shut down before the message was dealt with: leave it uncommitted,
			// the group's next owner gets it again.
			return nil
		}
		// Commit even during shutdown: the work is done.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = r.CommitMessages(cctx, m)
		cancel()
		if err != nil {
			// A rebalance can take the partition away; the next owner redelivers and
			// the handlers are idempotent, so this costs a duplicate fetch, not a write.
			cfg.Log.Warn().Err(err).Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).Msg("kafka commit failed")
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func newGroupReader(c *Client, cfg ConsumerConfig) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:           c.Brokers(),
		Dialer:            c.Dialer(),
		GroupID:           cfg.GroupID,
		GroupTopics:       cfg.Topics,
		StartOffset:       kafka.FirstOffset,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           250 * time.Millisecond,
		CommitInterval:    0, // synchronous commits: a commit returns once stored
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		MaxAttempts:       3,
	})
}

// handleUntilRouted calls h until it returns nil, backing off between attempts.
// It returns false when ctx ends first.
func handleUntilRouted(ctx context.Context, cfg ConsumerConfig, h Handler, m kafka.Message) bool {
	backoff := 200 * time.Millisecond
	for {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HandleTimeout)
		err := h(hctx, m)
		cancel()
		if err == nil {
			return true
		}
		cfg.Log.Error().Err(err).Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).
			Msg("message not handled; retrying it before anything after it")
		if !sleep(ctx, backoff) {
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
