// Package backlog measures what waits in Kafka — the writers' consumer lag and the
// growth of the dead-letter and rejected topics — and hands it to the metrics, so that
// alerts and the work autoscaler (an external metric) need no Kafka exporter.
package backlog

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/metrics"
)

// DefaultInterval is the time between polls: well inside a 30 s scrape and the
// autoscaler's 15 s loop, at a few small admin requests per topic.
const DefaultInterval = 15 * time.Second

// Group is a consumer group and the topics it consumes.
type Group struct {
	ID     string
	Topics []string
}

// Kafka is what a poll asks the cluster.
type Kafka interface {
	Lag(ctx context.Context, group, topic string) ([]kafkabus.PartitionLag, error)
	EndOffsetSum(ctx context.Context, topic string) (int64, error)
}

// Poller polls Kafka and sets the backlog metrics.
type Poller struct {
	Kafka    Kafka
	Groups   []Group
	Counted  []string // topics whose appended records are counted (DLQ, rejected)
	Metrics  *metrics.Backlog
	Interval time.Duration // default DefaultInterval
	Log      zerolog.Logger
}

// Poll measures once and returns what it saw.
func (p *Poller) Poll(ctx context.Context) (metrics.BacklogSnapshot, error) {
	s := metrics.BacklogSnapshot{Lag: map[[2]string]int64{}, Appended: map[string]int64{}}
	for _, g := range p.Groups {
		for _, t := range g.Topics {
			parts, err := p.Kafka.Lag(ctx, g.ID, t)
			if err != nil {
				return s, fmt.Errorf("backlog: lag of %s on %s: %w", g.ID, t, err)
			}
			var n int64
			for _, pl := range parts {
				n += pl.Lag
			}
			s.Lag[[2]string{g.ID, t}] = n
		}
	}
	for _, t := range p.Counted {
		n, err := p.Kafka.EndOffsetSum(ctx, t)
		if err != nil {
			return s, fmt.Errorf("backlog: offsets of %s: %w", t, err)
		}
		s.Appended[t] = n
	}
	return s, nil
}

// Run polls every interval until ctx ends. A failed poll clears the values (a stale
// lag would mislead the autoscaler and the alerts) and is counted.
func (p *Poller) Run(ctx context.Context) error {
	every := p.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, every)
		s, err := p.Poll(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			p.Metrics.Failed()
			p.Metrics.Set(metrics.BacklogSnapshot{})
			p.Log.Warn().Err(err).Msg("backlog poll failed")
		default:
			p.Metrics.Set(s)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
