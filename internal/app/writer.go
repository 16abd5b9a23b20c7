package app

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/calltrack/calltrack/internal/callstate"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/latebind"
	"github.com/calltrack/calltrack/internal/popup"
	"github.com/calltrack/calltrack/internal/route"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/tenant"
)

// AdapterFactory returns the CRM adapter of a tenant.
type AdapterFactory func(t *tenant.Tenant) (crm.Adapter, error)

// Writer is the writer role: the call-writing service, the Kafka handlers around it
// and the pop-up consumer, built once.
type Writer struct {
	Service  *callwriter.Service
	Handlers *route.Handlers
	Popups   *popup.Consumer
}

// wireWriter builds the call-state store and parking (Open calls it): the writer, the
// redrive and the on-call commands share them.
func (a *App) wireWriter() {
	a.State = callstate.NewRedis(a.Redis, a.Cfg.RedisPrefix)
	bg, cancel := context.WithCancel(context.Background())
	a.background = bg
	// Closers run in reverse: a restore in flight ends before the producer and Redis close.
	a.closers = append(a.closers, func() error { cancel(); a.restores.Wait(); return nil })
	a.Parking = &latebind.Parking{State: a.State, Publisher: a.Producer, Topic: a.Topics.Parked}
	// Redis found without its epoch marker lost its data (or is new): the parked calls
	// come back from their journal.
	a.State.OnNewEpoch = func(epoch time.Time) {
		if epoch.IsZero() { // startEpoch: the writers never consumed, so nothing was written
			a.Log.Info().Msg("redis has no call-state epoch and the writers never consumed a call: a new deployment; no call is looked up in the CRM for it")
		} else {
			a.Log.Warn().Time("epoch", epoch).Msg("redis has no call-state epoch: it is new or lost its data; " +
				"calls that began (or were received) before now are looked up in the CRM before any create, and the parked calls are restored")
		}
		a.restoreParkedOnce()
	}
}

// Writer builds the writer role.
func (a *App) Writer() *Writer {
	svc := &callwriter.Service{Tenants: a.Tenants, CRMs: a.writerCRM, Store: a.State, Owners: a.Mappings,
		Parking: a.Parking, Trace: a.Trace, FollowUps: a.followUps(), Link: a.Link, Log: a.Log,
		Config: callwriter.Config{LeaseTTL: a.Cfg.WriterLease, SettleDelay: a.Cfg.WriterSettle}}
	h := &route.Handlers{Service: svc, Publisher: a.Producer, Topics: a.Topics, Policy: a.Retry, Trace: a.Trace,
		Metrics: a.Metrics, Log: a.Log, Pause: a.pauseCRM}
	p := &popup.Consumer{Tenants: a.Tenants, Notifiers: a.Notifier, MaxAge: a.Cfg.PopupMaxAge,
		Lag: a.Metrics.PopupLag, Outcomes: a.Metrics.Popups, Log: a.Log}
	return &Writer{Service: svc, Handlers: h, Popups: p}
}

// writerCRM is a tenant's CRM as the writer uses it (crm.Adapter has the lookup).
func (a *App) writerCRM(t *tenant.Tenant) (callwriter.CRM, error) { return a.Adapters(t) }

// pauseCRM holds a tenant's CRM credential for every replica (a 429's Retry-After).
func (a *App) pauseCRM(ctx context.Context, tenantID string, d time.Duration) {
	t, ok := a.Tenants.Get(tenantID)
	if !ok {
		return
	}
	if err := a.Limiter(t).Pause(ctx, d); err != nil {
		a.Log.Warn().Err(err).Str("tenant", tenantID).Msg("rate-limit pause not shared")
	}
}

// RunWriter runs the writer's consumer groups, the redrive of parked calls, the
// release of held call.end events, the periodic backfill and the census of parked
// calls until ctx ends.
func (a *App) RunWriter(ctx context.Context, w *Writer) error {
	a.startGuard() // ingest.go: Redis eviction check, restore after data loss
	if err := a.awaitEpoch(ctx); err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	g, ctx := errgroup.WithContext(ctx)
	// Lanes per tenant: one tenant's slow or failing CRM never holds up another's calls;
	// one call's events stay in order in one lane.
	byTenant := func(m kafka.Message) string { return kafkabus.Header(m, kafkabus.HeaderTenant) }
	tracked := func(group string) func(int64) {
		g := a.Metrics.ConsumerTracked.WithLabelValues(group)
		return func(n int64) { g.Set(float64(n)) }
	}
	g.Go(func() error {
		return kafkabus.ConsumeConcurrent(ctx, a.Kafka, kafkabus.ConcurrentConfig{
			ConsumerConfig: kafkabus.ConsumerConfig{GroupID: a.Cfg.WriterGroup, Topics: []string{a.Topics.Log, a.Topics.Recording}, Log: a.Log},
			// 32 lanes: enough concurrent writes per tenant for Zoho's batches to fill.
			GroupOf: byTenant, Lanes: 32, QueueSize: 16, Overflow: w.Handlers.Defer, OnTracked: tracked(a.Cfg.WriterGroup), MaxBytes: a.Cfg.ConsumerMaxBytes}, w.Handlers.Main())
	})
	g.Go(func() error {
		return kafkabus.ConsumeConcurrent(ctx, a.Kafka, kafkabus.ConcurrentConfig{
			ConsumerConfig: kafkabus.ConsumerConfig{GroupID: a.Cfg.WriterGroup + "-retry", Topics: []string{a.Topics.Retry}, Log: a.Log},
			GroupOf:        byTenant, Lanes: 32, QueueSize: 16, DueAt: route.DueAt, Overflow: w.Handlers.Defer,
			OnTracked: tracked(a.Cfg.WriterGroup + "-retry"), MaxBytes: a.Cfg.ConsumerMaxBytes}, w.Handlers.Retry())
	})
	g.Go(func() error {
		return kafkabus.ConsumeConcurrent(ctx, a.Kafka, kafkabus.ConcurrentConfig{
			ConsumerConfig: kafkabus.ConsumerConfig{GroupID: a.Cfg.WriterGroup + "-popups", Topics: []string{a.Topics.Live}, Log: a.Log,
				HandleTimeout: 10 * time.Second},
			GroupOf: byTenant, OnTracked: tracked(a.Cfg.WriterGroup + "-popups"), MaxBytes: a.Cfg.ConsumerMaxBytes}, telemetry.Consume(w.Popups.Handle))
	})
	g.Go(func() error { return a.watchEpoch(ctx) })
	g.Go(func() error { return a.RunRedrive(ctx) })
	g.Go(func() error { return a.RunParkedCensus(ctx) })
	g.Go(func() error { return a.RunProvisional(ctx) })
	g.Go(func() error { return a.RunBackfill(ctx) })
	return g.Wait()
}

// RunParkedCensus exports each tenant's parked calls and the age of the oldest
// (calltrack_parked_calls, calltrack_parked_oldest_age_seconds) until ctx ends: the
// dashboard's parked-calls panel and the alert on calls parked longer than a day.
func (a *App) RunParkedCensus(ctx context.Context) error {
	c := &latebind.Census{State: a.State, Tenants: a.Tenants.IDs, Metrics: a.Metrics.Parked,
		Log: a.Log.With().Str("role", "parked-census").Logger()}
	return c.Run(ctx)
}

// awaitEpoch starts the epoch (startEpoch), waiting out a Redis or Kafka that does not
// answer yet: a writer started during an outage writes once they are back, instead of
// exiting (nothing is consumed before the epoch is known).
func (a *App) awaitEpoch(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 200*time.Millisecond, 5*time.Second
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := a.startEpoch(ctx)
		if err != nil && ctx.Err() == nil {
			a.Log.Warn().Err(err).Msg("writer waits for Redis and Kafka to start its call-state epoch")
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	return err
}

// watchEpoch checks the call-state epoch every guard interval (10 s) after
// awaitEpoch's check at start, and starts it when Redis lost it: its OnNewEpoch then
// restores the parked calls from their journal. The writer keeps this check of its own
// rather than a step of the Redis guard, whose marker is shared with serve: a serve
// replica that restores the mappings and sets the marker first knows nothing of the
// parked calls, and the lazy start inside a claim waits for the next call to be
// written. The epoch's SETNX lets one replica restore per loss.
func (a *App) watchEpoch(ctx context.Context) error {
	interval := a.Guard.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.startEpoch(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			a.Log.Warn().Err(err).Msg("writer could not check its call-state epoch (parked calls are restored when Redis lost it)")
		}
	}
}

// startEpoch starts the call-state epoch when Redis has none, before anything is
// consumed. Redis is then new or lost its data; which, Kafka tells: if the writers have
// never committed an offset, nothing was ever written, and no call needs a lookup for
// having arrived before the epoch (a new deployment's first calls cost nothing extra).
func (a *App) startEpoch(ctx context.Context) error {
	if _, ok, err := a.State.Epoch(ctx); err != nil || ok {
		return err
	}
	at := time.Now()
	consumed, err := a.writersConsumed(ctx)
	if err != nil {
		return err
	}
	if !consumed {
		at = time.Time{}
	}
	_, err = a.State.StartEpoch(ctx, at)
	return err
}

// writersConsumed reports whether the writers' groups ever committed an offset.
func (a *App) writersConsumed(ctx context.Context) (bool, error) {
	for group, topic := range map[string]string{a.Cfg.WriterGroup: a.Topics.Log, a.Cfg.WriterGroup + "-retry": a.Topics.Retry} {
		parts, err := a.Kafka.Partitions(ctx, topic)
		if err != nil {
			return false, err
		}
		committed, err := a.Kafka.Committed(ctx, group, topic, parts)
		if err != nil {
			return false, err
		}
		for _, off := range committed {
			if off >= 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

// RestoreParked rebuilds the parked sets in Redis from the parked-calls journal.
func (a *App) RestoreParked(ctx context.Context) (latebind.RestoreStats, error) {
	return latebind.Restore(ctx, a.Kafka, a.Topics.Parked, a.State)
}

// restoreParkedOnce restores the parked calls in the background, one restore at a time,
// retrying for up to 5 minutes (Kafka or Redis may be coming back too; a restore run
// again does no harm): the epoch is set by then, so nothing else would try again.
func (a *App) restoreParkedOnce() {
	a.restores.Add(1)
	go func() {
		defer a.restores.Done()
		a.restoreMu.Lock()
		defer a.restoreMu.Unlock()
		ctx, cancel := context.WithTimeout(a.background, 5*time.Minute)
		defer cancel()
		bo := backoff.NewExponentialBackOff()
		bo.InitialInterval, bo.MaxInterval = time.Second, 30*time.Second
		st, err := backoff.Retry(ctx, func() (latebind.RestoreStats, error) {
			st, err := a.RestoreParked(ctx)
			if err != nil && ctx.Err() == nil {
				a.Log.Warn().Err(err).Msg("parked calls not restored yet; retrying")
			}
			return st, err
		}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
		if err != nil {
			a.Log.Error().Err(err).Msg("parked calls not restored; run `calltrack parked rebuild`")
			return
		}
		a.Log.Info().Int("records", st.Records).Int("restored", st.Restored).Msg("parked calls restored from their journal")
	}()
}
