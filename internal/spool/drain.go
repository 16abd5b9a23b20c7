package spool

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Kafka is what the spool needs of Kafka: a publish that returns once every message
// is acknowledged.
type Kafka interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// DefaultPublishTimeout bounds a webhook's wait for Kafka before its events go to the
// spool (CALLTRACK_PUBLISH_TIMEOUT).
const DefaultPublishTimeout = 2 * time.Second

// Publisher hands one delivery's events to Kafka, or — when Kafka fails or does not
// acknowledge within Timeout, or while the spool still holds earlier deliveries (their
// order is kept) — to the spool.
type Publisher struct {
	Kafka   Kafka
	Spool   *Spool
	Timeout time.Duration // DefaultPublishTimeout when zero
	Metrics *Metrics      // optional
	Log     zerolog.Logger
}

// Deliver returns once the events are acknowledged by Kafka (spooled=false) or on the
// spool's disk (spooled=true). An error wraps ErrFull or ErrFailed when neither could
// take them.
func (p *Publisher) Deliver(ctx context.Context, msgs ...kafka.Message) (spooled bool, err error) {
	if p.Spool.Empty() {
		timeout := p.Timeout
		if timeout <= 0 {
			timeout = DefaultPublishTimeout
		}
		// The caller hanging up does not cut the publish short.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		err := p.Kafka.Publish(pctx, msgs...)
		cancel()
		if err == nil {
			return false, nil
		}
		// A publish cut off by the timeout may still complete in the background: the
		// spooled copy is then a redelivery, which the writer's exactly-once absorbs.
		p.Log.Warn().Err(err).Dur("timeout", timeout).Msg("kafka did not take the call in time: spooling it")
	}
	if err := p.Spool.Append(context.WithoutCancel(ctx), msgs); err != nil {
		if p.Metrics != nil {
			reason := "failed"
			if errors.Is(err, ErrFull) {
				reason = "full"
			}
			p.Metrics.Refused.WithLabelValues(reason).Inc()
		}
		return false, err
	}
	if p.Metrics != nil {
		p.Metrics.Appended.Inc()
	}
	return true, nil
}

// Publish is Deliver for callers that need not know where the events went.
func (p *Publisher) Publish(ctx context.Context, msgs ...kafka.Message) error {
	_, err := p.Deliver(ctx, msgs...)
	return err
}

// Drainer forwards the spool to Kafka, oldest first, and removes entries once Kafka
// acknowledged them.
type Drainer struct {
	Spool   *Spool
	Kafka   Kafka
	Batch   int           // entries per publish; default 200
	Timeout time.Duration // one publish; default 10 s
	Metrics *Metrics      // optional
	Log     zerolog.Logger
	// Prepare, when set, must succeed before the first drain (creating the topics of a
	// process that started while Kafka was down); until it does, its error is Err, so
	// readiness says Kafka is unreachable rather than that the spool is draining.
	Prepare func(ctx context.Context) error

	lastErr atomic.Pointer[error]
}

// Err is the last drain's error: nil when it forwarded what it tried to (or had nothing to).
func (d *Drainer) Err() error {
	if p := d.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Run drains whenever the spool holds entries, until ctx ends. While Kafka refuses,
// it retries with a backoff of 100 ms doubling to 2 s.
func (d *Drainer) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	prepared := d.Prepare == nil
	for {
		var n int
		var err error
		if !prepared {
			if err = d.Prepare(ctx); err == nil {
				prepared = true
				continue
			}
		} else {
			n, err = d.Drain(ctx)
		}
		if ctx.Err() == nil {
			d.lastErr.Store(&err)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			d.Log.Warn().Err(err).Dur("retry_in", backoff).Msg("spool: kafka does not take the spooled calls yet")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		case n > 0:
			backoff = 100 * time.Millisecond
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.Spool.nonEmpty:
		case <-time.After(time.Second): // a belt to the signal's braces
		}
	}
}

// Drain forwards entries until the spool is empty or a publish fails, and returns how
// many it forwarded.
func (d *Drainer) Drain(ctx context.Context) (int, error) {
	batch, timeout := d.Batch, d.Timeout
	if batch <= 0 {
		batch = 200
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	total := 0
	for ctx.Err() == nil {
		entries, next, err := d.Spool.peek(batch)
		if err != nil {
			return total, err
		}
		if len(entries) == 0 {
			return total, nil
		}
		var msgs []kafka.Message
		for _, e := range entries {
			msgs = append(msgs, e.messages()...)
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err = d.Kafka.Publish(pctx, msgs...)
		cancel()
		if err != nil {
			return total, fmt.Errorf("spool: drain: %w", err)
		}
		if err := d.Spool.remove(next); err != nil {
			// On Kafka but still on disk: they go again, and the writer's exactly-once
			// absorbs the second copy.
			return total, err
		}
		total += len(entries)
		if d.Metrics != nil {
			d.Metrics.Drained.Add(float64(len(entries)))
			d.Metrics.DrainedMessages.Add(float64(len(msgs)))
		}
		if d.Spool.Empty() {
			d.Log.Info().Int("entries", total).Msg("spool drained to kafka")
		}
	}
	return total, ctx.Err()
}

// DrainAll forwards the spool to Kafka until it is empty or ctx ends, retrying a drain
// Kafka refused with a backoff (100 ms growing to 2 s, jittered; back to 100 ms after a
// drain that forwarded something). A process on its way out (SIGTERM) drains with it for
// as long as its shutdown timeout lasts. It returns how many entries it forwarded, and
// nil once the spool is empty; when ctx ended first, the last drain's error (or ctx's).
func (d *Drainer) DrainAll(ctx context.Context) (int, error) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 100*time.Millisecond, 2*time.Second
	total := 0
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		n, err := d.Drain(ctx)
		total += n
		if n > 0 {
			bo.Reset()
		}
		if err != nil {
			last = err
			if ctx.Err() == nil {
				d.Log.Warn().Err(err).Int("drained", total).Msg("spool: kafka does not take the spooled calls yet: retrying while the shutdown timeout lasts")
			}
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	if err != nil && last != nil && !errors.Is(last, err) {
		err = fmt.Errorf("%w; last drain: %w", err, last)
	}
	return total, err
}
