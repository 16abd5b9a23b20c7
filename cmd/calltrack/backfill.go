package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/backfill"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/replay"
)

func backfillCmd() *cobra.Command {
	var (
		tenantID, sinceS, untilS string
		dryRun, asJSON           bool
		wait                     time.Duration
		conn                     cliConn
	)
	cmd := &cobra.Command{
		Use:   "backfill --tenant T --since 6h [--until T1] [--dry-run]",
		Short: "Write the calls MyOperator never delivered: ask its call log for a window and publish the calls calltrack never saw",
		Long: `backfill asks MyOperator's call-log search (POST /search, with the tenant's
myoperator_api_token_env) which calls the tenant had in the window, and publishes each
call calltrack has never seen as a call log (source myoperator.backfill); the writers
then write it to the CRM like any other call, attributed by today's mappings.

"Seen" means a call log of the call was published (the call's trace shows it
published, written, unattributed, retrying or dead-lettered): a webhook that was
received but never published is not seen. Each call is published once, even when
backfills run on several replicas or again over the same window; --dry-run counts
without writing. The window is on call start times: --since and --until are RFC 3339
(2026-10-10T09:00:00Z) or a time ago (6h, 30m, 1d), at most 7 days back (calltrack
keeps what it has seen of a call 7 days). Requests to MyOperator keep to the tenant's
backfill.rate (default 20 a minute, shared with every replica). Needs the services'
settings: CALLTRACK_KAFKA_BROKERS (or --brokers), CALLTRACK_REDIS_ADDR (or --redis),
CALLTRACK_TENANTS_FILE.

It prints the calls found, already known, and published (or, with --dry-run, that
would be). Exit status: 0 done, 1 failed, 2 bad flags.`,
		Example: `  calltrack backfill --tenant acme --since 6h --dry-run
  calltrack backfill --tenant acme --since 2026-10-10T09:00:00Z --until 2026-10-10T13:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenantID == "" {
				return usageError{errors.New("--tenant is required")}
			}
			now := time.Now()
			since, err := replay.ParseTime(sinceS, now)
			if err != nil {
				return usageError{fmt.Errorf("--since: %w", err)}
			}
			until, err := replay.ParseTime(untilS, now)
			if err != nil {
				return usageError{fmt.Errorf("--until: %w", err)}
			}
			if _, _, err := backfill.Window(since, until, now); err != nil {
				return usageError{err}
			}
			a, err := conn.open(cmd.Context(), config.Need{Kafka: true, Redis: true, Tenants: true})
			if err != nil {
				return err
			}
			defer a.Close()
			if _, ok := a.Tenants.Get(tenantID); !ok {
				return usageError{fmt.Errorf("--tenant %s: no such tenant in %s", tenantID, a.Cfg.TenantsFile)}
			}
			r, err := a.Backfill.Run(cmd.Context(), tenantID, backfill.Options{Since: since, Until: until, DryRun: dryRun,
				Trigger: backfill.TriggerCLI, Wait: wait})
			if r != nil {
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					_ = enc.Encode(r)
				} else {
					printBackfill(cmd.OutOrStdout(), r)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenantID, "tenant", "", "the tenant to backfill (required)")
	f.StringVar(&sinceS, "since", "", "window start: RFC 3339 or a time ago (6h, 30m, 1d); required")
	f.StringVar(&untilS, "until", "", "window end: RFC 3339 or a time ago (default: now)")
	f.BoolVar(&dryRun, "dry-run", false, "count the calls, write nothing")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for a backfill of the tenant already running (e.g. the periodic one)")
	conn.kafkaFlags(cmd)
	conn.redisFlags(cmd, "Redis of the calls' state")
	return cmd
}

func printBackfill(out io.Writer, r *backfill.Report) {
	fmt.Fprintf(out, "backfill of %s: calls that started from %s to %s\n", r.Tenant, r.Since.UTC().Format(time.RFC3339), r.Until.UTC().Format(time.RFC3339))
	what, n := "published", r.Published
	if r.DryRun {
		what, n = "would publish", r.WouldPublish
	}
	fmt.Fprintf(out, "found %d calls in MyOperator's call log, %d already known to calltrack, %s %d\n", r.Found, r.Known, what, n)
	if r.Unreadable > 0 {
		fmt.Fprintf(out, "%d unreadable entries kept on the rejected topic\n", r.Unreadable)
	}
	for _, id := range r.Calls {
		fmt.Fprintf(out, "  %s %s\n", what, id)
	}
	if len(r.Calls) < n {
		fmt.Fprintf(out, "  ... and %d more\n", n-len(r.Calls))
	}
	if r.DryRun {
		fmt.Fprintln(out, "dry run: nothing written")
	}
	if r.Error != "" {
		fmt.Fprintf(out, "stopped: %s\n", r.Error)
	}
}
