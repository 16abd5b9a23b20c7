package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/usersync"
)

func syncCmd() *cobra.Command {
	var (
		once     bool
		interval time.Duration
		only     []string
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Match MyOperator agents to CRM users: a sync of every tenant at start, then every interval (CALLTRACK_* env)",
		Long: `sync pulls each tenant's MyOperator users and CRM users, matches them (per the
tenant's sync: settings) and updates the agent → CRM-user mappings. It syncs every
tenant at start, then every interval (each tenant's sync.interval, default 6h,
jittered). Any number of replicas may run: one sync per tenant runs at a time.
With --once it syncs each tenant once, prints a summary and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval != 0 && interval < time.Minute {
				return usageError{fmt.Errorf("--interval %s: at least 1m", interval)}
			}
			a, err := open(cmd.Context(), config.Need{Kafka: true, Redis: true, Tenants: true})
			if err != nil {
				return err
			}
			defer a.Close()
			if len(only) > 0 {
				for _, id := range only {
					if _, ok := a.Tenants.Get(id); !ok {
						return usageError{fmt.Errorf("--tenant %s: no such tenant", id)}
					}
				}
			} else {
				only = a.Tenants.IDs()
			}
			if once {
				return syncOnce(cmd.Context(), a, only, cmd.OutOrStdout())
			}
			started(a)
			g, ctx := errgroup.WithContext(cmd.Context())
			g.Go(func() error { return app.Serve(ctx, app.ProbeServer(a), a.Cfg.HTTPAddr, a.Cfg.ShutdownTimeout, a.Log) })
			g.Go(func() error { return a.RunSync(ctx, interval) })
			return g.Wait()
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "sync each tenant once, print a summary and exit")
	cmd.Flags().DurationVar(&interval, "interval", 0, "time between syncs for every tenant (default: each tenant's sync.interval, 6h)")
	cmd.Flags().StringSliceVar(&only, "tenant", nil, "with --once: sync only these tenants (repeatable)")
	return cmd
}

// syncOnce syncs the tenants one after the other and prints one line each; it fails
// when a configured tenant's sync failed.
func syncOnce(ctx context.Context, a *app.App, tenants []string, out io.Writer) error {
	var failed []string
	for _, id := range tenants {
		r, err := a.UserSync.Sync(ctx, id, usersync.Options{Wait: time.Minute})
		switch {
		case errors.Is(err, usersync.ErrNotConfigured):
			fmt.Fprintf(out, "%s: skipped: %v\n", id, err)
		case err != nil:
			fmt.Fprintf(out, "%s: failed: %v\n", id, err)
			failed = append(failed, id)
		default:
			fmt.Fprintf(out, "%s: %d matched, %d unmatched, %d changes (%d MyOperator users, %d CRM users)\n",
				id, len(r.Matched), len(r.Unmatched), len(r.Changes), r.Users.MyOperator, r.Users.CRM)
			for _, u := range r.Unmatched {
				fmt.Fprintf(out, "  unmatched %s user %s <%s>: %s\n", u.Side, u.ID, u.Email, u.Reason)
			}
		}
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		return fmt.Errorf("user sync failed for %v", failed)
	}
	return nil
}
