package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/provisional"
	"github.com/calltrack/calltrack/internal/redisbatch"
	"github.com/calltrack/calltrack/internal/redisguard"
	"github.com/calltrack/calltrack/internal/spool"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// Option changes how Open starts the app.
type Option func(*ingestState)

// WithIngest is for the roles that take webhooks (serve, dev): the app opens the
// spool in CALLTRACK_SPOOL_DIR, starts its drainer, and starts even when Kafka or
// Redis does not answer (calls go to the spool, owners unresolved).
func WithIngest() Option { return func(s *ingestState) { s.ingesting = true } }

// WithEmbeddedRedis is for dev, whose Redis is its own miniredis: it has no
// maxmemory-policy to check (no CONFIG) and evicts nothing.
func WithEmbeddedRedis() Option { return func(s *ingestState) { s.embeddedRedis = true } }

// ingestState is the App's ingest side.
type ingestState struct {
	ingesting     bool
	embeddedRedis bool
	stopDrain     context.CancelFunc
	drainDone     chan struct{}
	spoolStats    *spool.Metrics
	drainer       *spool.Drainer
	// topicsMissing: Kafka was down at start, so the drainer creates the topics first.
	topicsMissing bool
	// Guard watches Redis: eviction policy, lost data (restored by its steps). Other
	// wiring adds restore steps (Guard.Add) during Open; it starts when Open is done.
	Guard     *redisguard.Guard
	guardOnce sync.Once
}

// startGuard runs the Redis guard until Close (serve, work and dev; not the CLIs).
func (a *App) startGuard() {
	a.guardOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); a.Guard.Run(ctx) }()
		a.closers = append(a.closers, func() error { cancel(); <-done; return nil })
	})
}

// newGuard builds the Redis guard with the mappings' restore from their journal.
func (a *App) newGuard() {
	a.Guard = &redisguard.Guard{Redis: a.Redis, Prefix: a.Cfg.RedisPrefix, NoPolicy: a.embeddedRedis,
		Log: a.Log.With().Str("role", "redisguard").Logger()}
	a.Guard.Add(redisguard.Step{Name: "mappings", Run: a.fillMappings})
}

// startWait is how long Open waits for a server at start: briefly when ingesting,
// which must answer webhooks whatever is down.
func (a *App) startWait(full time.Duration) time.Duration {
	if a.ingesting {
		return 3 * time.Second
	}
	return full
}

// direct hands events to Kafka with no spool (roles that take no webhooks).
type direct struct{ p *kafkabus.Producer }

func (d direct) Deliver(ctx context.Context, msgs ...kafka.Message) (bool, error) {
	return false, d.p.Publish(ctx, msgs...)
}

// openIngest opens the spool and starts its drainer (WithIngest), and keeps trying to
// create the topics if Kafka was down at start.
func (a *App) openIngest() error {
	a.newGuard()
	a.Delivery = direct{a.Producer}
	if !a.ingesting {
		return nil
	}
	if a.Cfg.SpoolDir == "" {
		return errors.New("CALLTRACK_SPOOL_DIR is required to take webhooks (a persistent volume per serve replica)")
	}
	s, err := spool.Open(a.Cfg.SpoolDir, spool.Options{MaxBytes: a.Cfg.SpoolMaxBytes})
	if err != nil {
		return fmt.Errorf("CALLTRACK_SPOOL_DIR: %w", err)
	}
	a.Spool = s
	a.closers = append(a.closers, s.Close) // after the drainer (closers run in reverse)
	blog := a.Log.With().Str("role", "ingest").Logger()
	// The webhooks' trace index entries go in one ZADD a batch (only After's goroutine
	// touches afterIndex).
	traces, idx := a.Trace, &trace.IndexBatch{}
	a.afterIndex = idx
	a.After = redisbatch.New(a.Redis, redisbatch.Options{
		Finish: func(p redis.Pipeliner) { traces.FlushIndex(context.Background(), p, idx) },
		Failed: func(err error, commands int) {
			// A redelivery may then publish again (the writer's idempotency absorbs it); a
			// trace misses a stage.
			blog.Warn().Err(err).Int("commands", commands).Msg("webhooks' dedupe finishes and trace stages not written")
		}})
	closeBatch := func(b *redisbatch.Batcher) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return b.Close(ctx)
		}
	}
	a.closers = append(a.closers, closeBatch(a.After)) // before Redis closes: it was opened first
	// Webhooks' first round trips (claim and lookups), answers awaited: closed after
	// After (closers run in reverse), both before Redis.
	a.Before = redisbatch.New(a.Redis, redisbatch.Options{Timeout: a.Cfg.RedisBudget, Failed: func(err error, commands int) {
		// Each webhook goes on without Redis (not deduplicated, its owner left to the writer).
		blog.Warn().Err(err).Int("commands", commands).Msg("webhooks' claims and owner lookups not answered")
	}})
	a.closers = append(a.closers, closeBatch(a.Before))
	a.spoolStats = spool.NewMetrics(a.Metrics.Registry, s)
	log := a.Log.With().Str("role", "spool").Logger()
	a.Delivery = &spool.Publisher{Kafka: a.Producer, Spool: s, Timeout: a.Cfg.PublishTimeout, Metrics: a.spoolStats, Log: log}
	if st := s.Stats(); st.Entries > 0 {
		log.Warn().Uint64("entries", st.Entries).Time("oldest", st.Oldest).Str("dir", s.Dir()).Msg("spool holds calls from before: draining them to kafka first")
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stopDrain, a.drainDone = cancel, make(chan struct{})
	d := &spool.Drainer{Spool: s, Kafka: a.Producer, Metrics: a.spoolStats, Log: log}
	if a.topicsMissing {
		// Kafka was down at start: the topics are created before anything is drained.
		d.Prepare = func(ctx context.Context) error {
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return a.Kafka.EnsureTopics(tctx, a.Topics.Specs())
		}
	}
	a.drainer = d
	go func() {
		defer close(a.drainDone)
		_ = d.Run(ctx)
	}()
	a.closers = append(a.closers, func() error { return a.closeDrain(d) })
	return nil
}

// closeDrain stops the drainer and, on the way out (scale-down, deploy), forwards what
// the spool still holds while the shutdown timeout lasts — retrying with a backoff while
// Kafka refuses, not giving up at the first refusal; what Kafka does not take stays on
// the spool's volume for the next start.
func (a *App) closeDrain(d *spool.Drainer) error {
	a.stopDrain()
	<-a.drainDone
	if a.Spool.Empty() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.Cfg.ShutdownTimeoutOr(20*time.Second))
	defer cancel()
	n, err := d.DrainAll(ctx)
	if st := a.Spool.Stats(); st.Entries > 0 {
		a.Log.Warn().Err(err).Int("drained", n).Uint64("left", st.Entries).Str("dir", a.Spool.Dir()).
			Msg("spool not empty at exit: its calls go to kafka when a process opens this spool again (`calltrack spool drain`)")
	}
	return nil
}

// readyChecks: a role that takes webhooks is ready while Kafka or the spool can take
// calls, and says which; without Redis it still takes calls (owners unresolved). Other
// roles need Kafka and Redis.
func (a *App) readyChecks() map[string]web.Check {
	redis := func(ctx context.Context) error {
		if err := a.Redis.Ping(ctx).Err(); err != nil {
			return err
		}
		if d := a.Guard.Detail(); d != "" {
			return web.Notef("ok; %s", d)
		}
		return nil
	}
	if a.Spool == nil {
		return map[string]web.Check{"kafka": a.Kafka.Ping, "redis": redis}
	}
	return map[string]web.Check{
		"ingest": func(ctx context.Context) error {
			// The drainer's last attempt says more than a ping: the client may answer
			// metadata from its cache while the broker is down.
			kerr := a.Kafka.Ping(ctx)
			if kerr == nil && !a.Spool.Empty() {
				kerr = a.drainer.Err()
			}
			serr := a.Spool.CanTake()
			switch {
			case kerr == nil && a.Spool.Empty():
				return web.Notef("kafka")
			case kerr == nil:
				return web.Notef("spool: draining to kafka")
			case serr == nil:
				return web.Notef("spool: kafka unreachable (%v)", kerr)
			}
			return fmt.Errorf("neither kafka (%v) nor the spool (%v) can take calls", kerr, serr)
		},
		"spool": func(context.Context) error {
			st := a.Spool.Stats()
			text := fmt.Sprintf("%d waiting, %d of %d bytes", st.Entries, st.Bytes, a.Spool.MaxBytes())
			if !st.Oldest.IsZero() {
				text += fmt.Sprintf(", oldest %s", time.Since(st.Oldest).Round(time.Second))
			}
			if err := a.Spool.CanTake(); err != nil {
				text += ": " + err.Error()
			}
			return web.Notef("%s", text)
		},
		"redis": func(ctx context.Context) error {
			err := redis(ctx)
			var note *web.Note
			if err != nil && !errors.As(err, &note) {
				return web.Notef("degraded: %v: calls are accepted with owners unresolved, without dedupe or traces; the admin API fails", err)
			}
			return err
		},
	}
}

// fillMappings restores the mappings Redis lost from their journal topic: each agent's
// latest journaled mapping that Redis does not hold (one changed meanwhile is kept).
func (a *App) fillMappings(ctx context.Context) error {
	byTenant, st, err := mapping.ReadJournal(ctx, a.Kafka, a.Topics.Mapping)
	if err != nil {
		return err
	}
	total := 0
	for t, ms := range byTenant {
		list := make([]call.Mapping, 0, len(ms))
		for _, m := range ms {
			list = append(list, m)
		}
		n, err := a.Mappings.Fill(ctx, t, list)
		total += n
		if err != nil {
			return err
		}
	}
	a.Log.Warn().Int("restored", total).Int("journal_records", st.Records).Int("tenants", len(byTenant)).
		Msg("mappings restored from the journal topic")
	return nil
}

// SummaryWait is how long a call.end waits for its call.summary.
func (a *App) SummaryWait() time.Duration {
	if a.Cfg.V2SummaryWait > 0 {
		return a.Cfg.V2SummaryWait
	}
	return provisional.DefaultWait
}

// runHeld consumes the held call.end topic: each message is held until its wait is
// over, then released (provisional.Releaser). Every writer replica runs it.
func (a *App) runHeld(ctx context.Context) error {
	r := &provisional.Releaser{Wait: a.SummaryWait(), Publisher: a.Producer, Topic: a.Topics.Log, Trace: a.Trace,
		Log: a.Log.With().Str("role", "provisional").Logger()}
	byTenant := func(m kafka.Message) string { return kafkabus.Header(m, kafkabus.HeaderTenant) }
	return kafkabus.ConsumeConcurrent(ctx, a.Kafka, kafkabus.ConcurrentConfig{
		ConsumerConfig: kafkabus.ConsumerConfig{GroupID: a.Cfg.WriterGroup + "-held", Topics: []string{a.Topics.Held}, Log: a.Log},
		GroupOf:        byTenant, Lanes: 8, DueAt: r.DueAt}, r.Handle)
}
