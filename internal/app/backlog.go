package app

import (
	"context"

	"github.com/calltrack/calltrack/internal/backlog"
)

// RunBacklog exports the writers' consumer lag and the dead-letter and rejected topics'
// growth (calltrack_consumer_lag, calltrack_topic_appended_total) until ctx ends: the
// work autoscaler's external metric and the lag and DLQ alerts. `work` and `dev` run it.
func (a *App) RunBacklog(ctx context.Context) error {
	g := a.Cfg.WriterGroup
	p := &backlog.Poller{Kafka: a.Kafka, Metrics: a.Metrics.Backlog, Log: a.Log.With().Str("role", "backlog").Logger(),
		Groups: []backlog.Group{
			{ID: g, Topics: []string{a.Topics.Log, a.Topics.Recording}},
			{ID: g + "-retry", Topics: []string{a.Topics.Retry}},
			{ID: g + "-popups", Topics: []string{a.Topics.Live}},
		},
		Counted: []string{a.Topics.DLQ, a.Topics.Rejected}}
	return p.Run(ctx)
}
