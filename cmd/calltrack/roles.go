package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/gcpace"
	"github.com/calltrack/calltrack/internal/tenant"
)

// open reads config, validates what the command needs, loads tenants and opens the app.
func open(ctx context.Context, need config.Need, opts ...app.Option) (*app.App, error) {
	return (&cliConn{}).open(ctx, need, opts...)
}

// open is open with the command's --brokers and --redis over the environment's.
func (c *cliConn) open(ctx context.Context, need config.Need, opts ...app.Option) (*app.App, error) {
	cfg, err := c.config(need)
	if err != nil {
		return nil, err
	}
	log := app.NewLogger(os.Stderr, cfg.LogLevel)
	tenants := tenant.NewRegistry()
	if need.Tenants {
		if tenants, err = tenant.Load(cfg.TenantsFile, os.Getenv); err != nil {
			return nil, err
		}
	}
	return app.Open(ctx, cfg, log, tenants, opts...)
}

// started logs that a long-running role is up. The one-shot commands (rebuilds,
// backfill, sync --once) do not: their output is what they print.
func started(a *app.App) {
	a.Log.Info().Strs("tenants", a.Tenants.IDs()).Strs("kafka", a.Cfg.KafkaBrokers).Msg("started")
}

// paceGC lets a long-running role's heap grow to CALLTRACK_GC_HEAP_BUDGET before a
// collection while its live heap is small (gcpace), until the returned stop, which
// returns once GOGC is as it was.
func paceGC(ctx context.Context, a *app.App) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); gcpace.Run(ctx, uint64(a.Cfg.GCHeapBudget), gcpace.Every) }()
	return func() { cancel(); <-done }
}

func serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Receive MyOperator webhooks and serve the console and admin API (CALLTRACK_* env)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := open(cmd.Context(), config.Need{Kafka: true, Redis: true, Tenants: true, Admin: true}, app.WithIngest())
			if err != nil {
				return err
			}
			defer a.Close()
			started(a)
			defer paceGC(cmd.Context(), a)()
			pub, adm := a.HTTP(), a.AdminHTTP()
			g, ctx := errgroup.WithContext(cmd.Context())
			g.Go(func() error { return app.Serve(ctx, pub, a.Cfg.HTTPAddr, a.Cfg.ShutdownTimeout, a.Log) })
			if adm != nil { // console + admin API on CALLTRACK_ADMIN_ADDR
				g.Go(func() error { return app.Serve(ctx, adm, a.Cfg.AdminAddr, a.Cfg.ShutdownTimeout, a.Log) })
			}
			return g.Wait()
		},
	}
}

func workCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "work",
		Short: "Write call events from Kafka to the tenants' CRMs (CALLTRACK_* env)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := open(cmd.Context(), config.Need{Kafka: true, Redis: true, Tenants: true})
			if err != nil {
				return err
			}
			defer a.Close()
			started(a)
			defer paceGC(cmd.Context(), a)()
			// A small HTTP side for probes and metrics.
			e := app.ProbeServer(a)
			g, ctx := errgroup.WithContext(cmd.Context())
			g.Go(func() error { return app.Serve(ctx, e, a.Cfg.HTTPAddr, a.Cfg.ShutdownTimeout, a.Log) })
			g.Go(func() error { return a.RunWriter(ctx, a.Writer()) })
			g.Go(func() error { return a.RunBacklog(ctx) })
			return g.Wait()
		},
	}
}

func devCmd() *cobra.Command {
	o := app.DevOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: embedded Kafka and Redis, sandbox CRM, ingest, admin, writer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDurationEnv(cmd, "v2-summary-wait", "CALLTRACK_V2_SUMMARY_WAIT"); err != nil {
				return err
			}
			d, err := app.StartDev(cmd.Context(), o, os.Stderr)
			if err != nil {
				return err
			}
			defer d.Close()
			fmt.Fprint(cmd.OutOrStdout(), d.Banner())
			return d.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Addr, "addr", envOr("CALLTRACK_HTTP_ADDR", "127.0.0.1:8080"), "HTTP address: webhooks, admin API, sandboxes")
	cmd.Flags().StringVar(&o.KafkaAddr, "kafka-addr", "127.0.0.1:19092", "embedded Kafka address (kafka-go and Kafka CLIs can connect)")
	cmd.Flags().StringVar(&o.RedisAddr, "redis-addr", "127.0.0.1:16379", "embedded Redis address")
	cmd.Flags().StringVar(&o.LogLevel, "log-level", envOr("CALLTRACK_LOG_LEVEL", "info"), "log level")
	cmd.Flags().StringVar(&o.SpoolDir, "spool-dir", envOr("CALLTRACK_SPOOL_DIR", ""),
		"where calls wait while Kafka does not answer (default: calltrack-dev-spool-<port> in the temp dir)")
	cmd.Flags().DurationVar(&o.V2SummaryWait, "v2-summary-wait", durationEnvOr("CALLTRACK_V2_SUMMARY_WAIT", defaultSummaryWait),
		"how long a Webhook v2 call.end waits for its call.summary before the call is written from it")
	return cmd
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
