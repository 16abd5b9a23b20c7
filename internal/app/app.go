// Package app wires calltrack's roles (ingest + admin HTTP, CRM writer) from their
// dependencies, in order, and tears them down in reverse. `serve`, `work` and `dev`
// compose the same roles; dev only swaps the servers for embedded ones.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/authlimit"
	"github.com/calltrack/calltrack/internal/backfill"
	"github.com/calltrack/calltrack/internal/callstate"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/clicktocall"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/console"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/ingest"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/latebind"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/recording"
	"github.com/calltrack/calltrack/internal/redisbatch"
	"github.com/calltrack/calltrack/internal/route"
	"github.com/calltrack/calltrack/internal/spool"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/usersync"
	"github.com/calltrack/calltrack/internal/web"
)

// NewLogger returns the JSON logger at level (info when empty or unknown).
func NewLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	if w == nil {
		w = os.Stderr
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// App holds one process's shared clients.
type App struct {
	Cfg      config.Config
	Log      zerolog.Logger
	Tenants  *tenant.Registry
	Redis    redis.UniversalClient
	Kafka    *kafkabus.Client
	Producer *kafkabus.Producer
	Topics   kafkabus.Topics
	Metrics  *metrics.Metrics
	Mappings *mapping.Store
	Redrive  *latebind.Redriver // late binding of parked calls (sync.go)
	UserSync *usersync.Service  // user sync (sync.go)
	Backfill *backfill.Service  // backfill from MyOperator's call log (backfill.go)
	Idem     *idempotency.Store
	Trace    *trace.Store
	State    *callstate.Redis  // the writer's call states (writer.go)
	Parking  *latebind.Parking // parked calls: journal + Redis (writer.go)
	Retry    route.Policy
	Adapters AdapterFactory
	Link     callwriter.RecordingLinker
	// Ingest side (ingest.go): the spool Kafka's outages go to, and Redis's state.
	Spool    *spool.Spool
	Delivery ingest.Publisher
	Before   *redisbatch.Batcher // webhooks' first round trips (claim, lookups), many in one pipeline
	After    *redisbatch.Batcher // webhooks' dedupe finishes and trace stages, in the background
	// afterIndex collects After's trace index entries; its Finish adds them.
	afterIndex *trace.IndexBatch
	ingestState

	closers     []func() error
	attempts    *authlimit.Limiter   // failed authentications per client: admin API, console, click-to-call
	proxies     []netip.Prefix       // CALLTRACK_TRUSTED_PROXIES
	limiters    sync.Map             // tenant id → *ratelimit.Limiter
	moLimiters  sync.Map             // MyOperator account → *ratelimit.Limiter (backfill.go)
	recordings  *recording.Handler   // recording links (v2.go)
	clickToCall *clicktocall.Service // clicktocall.go
	console     *console.Console     // console.go
	// crmUserCache keeps each tenant's CRM users a minute for every admin.API built
	// (the console's dropdown and the check of a mapping's CRM user).
	crmUserCache *directory.Cache

	background context.Context // of background work (parked-call restores); ends at Close
	restores   sync.WaitGroup
	restoreMu  sync.Mutex
}

// Open connects Redis and Kafka, creates missing topics and the shared producer.
// With WithIngest it also opens the spool and starts without Kafka or Redis.
func Open(ctx context.Context, cfg config.Config, log zerolog.Logger, tenants *tenant.Registry, opts ...Option) (*App, error) {
	a := &App{Cfg: cfg, Log: log, Tenants: tenants, Topics: cfg.Topics(), Metrics: metrics.New(), Retry: route.DefaultPolicy(),
		crmUserCache: &directory.Cache{TTL: time.Minute}}
	for _, w := range tenants.Warnings() {
		log.Warn().Msg(w) // e.g. a Kylas tenant whose calls cannot be attributed (crm.auth api_key)
	}
	useRedisLogger(log)
	for _, o := range opts {
		o(&a.ingestState)
	}
	var err error
	if a.proxies, err = cfg.TrustedProxyRanges(); err != nil {
		return nil, err
	}
	rdb, err := cfg.Redis()
	if err != nil {
		return nil, err
	}
	a.Redis = rdb
	a.attempts = authlimit.New(rdb, cfg.RedisPrefix, log)
	a.closers = append(a.closers, rdb.Close)
	if err := waitFor(ctx, a.startWait(30*time.Second), func(ctx context.Context) error { return rdb.Ping(ctx).Err() }); err != nil && !a.ingesting {
		a.Close()
		return nil, fmt.Errorf("redis %s: %w", cfg.RedisAddrSafe(), err)
	} else if err != nil {
		log.Warn().Err(err).Msg("redis unreachable at start: calls are accepted with owners unresolved until it answers")
	}
	if a.Kafka, err = kafkabus.NewClient(cfg.Kafka()); err != nil {
		a.Close()
		return nil, err
	}
	if err := waitFor(ctx, a.startWait(60*time.Second), func(ctx context.Context) error { return a.Kafka.EnsureTopics(ctx, a.Topics.Specs()) }); err != nil && !a.ingesting {
		a.Close()
		return nil, fmt.Errorf("kafka %v: %w", cfg.KafkaBrokers, err)
	} else if err != nil {
		a.topicsMissing = true
		log.Warn().Err(err).Msg("kafka unreachable at start: calls go to the spool until it answers")
	}
	a.Producer = kafkabus.NewProducer(a.Kafka)
	a.closers = append(a.closers, a.Producer.Close)
	// The stores first: openIngest's background batch writes to the trace.
	a.Mappings = mapping.NewStore(rdb, cfg.RedisPrefix)
	a.Idem = idempotency.New(rdb, cfg.RedisPrefix)
	a.Trace = trace.New(rdb, cfg.RedisPrefix)
	if err := a.openIngest(); err != nil { // ingest.go
		a.Close()
		return nil, err
	}
	a.startOverview() // console.go
	a.wireWriter()
	a.wireSync()
	a.wireBackfill()
	a.wireRecordings()
	a.wireClickToCall()
	a.buildConsole() // console.go
	a.Adapters = a.defaultAdapters
	a.Link = a.recordingLink // durable signed links when configured (v2.go)
	if a.ingesting {
		a.startGuard() // ingest.go; work starts it in RunWriter
	}
	return a, nil
}

// waitFor retries fn until it succeeds or the timeout passes: at start-up the servers
// may still be coming up (compose, Kubernetes).
func waitFor(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(actx)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Close releases the clients in reverse order of opening.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.Log.Warn().Err(err).Msg("close")
		}
	}
	a.closers = nil
}

func (a *App) defaultAdapters(t *tenant.Tenant) (crm.Adapter, error) { return a.crmAdapter(t) } // crm.go

// Ready lists the readiness checks (ingest.go).
func (a *App) Ready() map[string]web.Check { return a.readyChecks() }

// Ingest builds the webhook handler.
func (a *App) Ingest() *ingest.Handler {
	return &ingest.Handler{Tenants: a.Tenants, Redis: a.Redis, Mappings: a.Mappings, Publisher: a.Delivery, Topics: a.Topics,
		Dedupe: a.Idem, Trace: a.Trace, Metrics: a.Metrics, Log: a.Log, RedisBudget: a.Cfg.RedisBudget, After: a.After, AfterIndex: a.afterIndex, Before: a.Before}
}

// Admin builds the admin API.
func (a *App) Admin() *admin.API {
	return &admin.API{Auth: a.AdminAuth(), Tenants: a.Tenants, Mappings: a.Mappings, Trace: a.Trace,
		PublicURL: a.Cfg.PublicURL, CRMUsers: a.crmUsers, UserCache: a.crmUserCache, Log: a.Log}
}

// HTTP builds the Echo server with ingest and admin, plus any extra mounts.
func (a *App) HTTP(extra ...func(*echo.Echo)) *echo.Echo {
	e := web.New(a.Log, a.Metrics, a.Ready(), a.webOptions()...)
	a.Ingest().Register(e)
	if a.Cfg.AdminAddr == "" {
		a.mountAdmin(e) // console.go
	}
	a.mountV2(e)
	a.mountClickToCall(e)
	for _, f := range extra {
		f(e)
	}
	return e
}

// Serve runs an HTTP server until ctx ends, then drains in-flight requests within the
// shutdown timeout.
func Serve(ctx context.Context, e *echo.Echo, addr string, shutdown time.Duration, log zerolog.Logger) error {
	srv := &http.Server{Addr: addr, Handler: telemetry.Handler(e), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info().Str("addr", addr).Msg("http listening")
	select {
	case err := <-errc:
		return fmt.Errorf("http %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// ProbeServer is the HTTP side of roles that serve no API: health, readiness, metrics.
func ProbeServer(a *App) *echo.Echo { return web.New(a.Log, a.Metrics, a.Ready(), a.webOptions()...) }
