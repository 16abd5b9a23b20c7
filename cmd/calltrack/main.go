// Command calltrack attributes MyOperator calls to CRM users. One binary; each
// deployable role is a subcommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/telemetry"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		var ue usageError
		fmt.Fprintln(os.Stderr, "calltrack:", err)
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run(ctx context.Context, args []string) error {
	root := &cobra.Command{
		Use:           "calltrack",
		Short:         "Attribute MyOperator calls to CRM users (Kylas, Zoho CRM)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	// Tracing (OpenTelemetry over OTLP) when OTEL_EXPORTER_OTLP_ENDPOINT is set; spans not
	// yet exported are flushed on the way out.
	shutdownTracing := func(context.Context) error { return nil }
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		shutdown, err := telemetry.Setup(cmd.Context(), cmd.Name(), version)
		if err != nil {
			return err
		}
		shutdownTracing = shutdown
		return nil
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownTracing(ctx)
	}()
	root.AddCommand(serveCmd(), workCmd(), devCmd(), versionCmd(), probeCmd())
	root.AddCommand(syncCmd(), mappingsCmd(), parkedCmd(), zohoCmd(), spoolCmd())
	root.AddCommand(replayCmd(), dlqCmd(), groupsCmd(), traceCmd(), backfillCmd())
	usageArgs(root)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// usageArgs makes a wrong number of arguments a usage error (exit status 2, as a bad
// flag is): cobra reports its argument validators' errors as plain ones.
func usageArgs(c *cobra.Command) {
	if valid := c.Args; valid != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := valid(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "calltrack", version)
			return nil
		},
	}
}

// probeCmd checks a URL answers 2xx: the healthcheck of distroless images, which have
// no curl. It prints the answer's body, and sends the operator token
// (CALLTRACK_ADMIN_TOKEN, when set) as a bearer token, so that /readyz shows each check:
// `kubectl exec ... -- /calltrack probe http://localhost:8080/readyz`. The token is never
// printed; the exit code alone (0 on 2xx, 1 otherwise) is what a container healthcheck
// or an exec probe reads.
func probeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "probe URL",
		Short:  "Print URL's answer; exit 0 when it is 2xx (container healthchecks)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, args[0], nil)
			if err != nil {
				return err
			}
			if token := os.Getenv("CALLTRACK_ADMIN_TOKEN"); token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			c := &http.Client{Timeout: 5 * time.Second}
			res, err := c.Do(req)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
			out := cmd.OutOrStdout()
			_, _ = out.Write(body)
			if len(body) > 0 && body[len(body)-1] != '\n' {
				fmt.Fprintln(out)
			}
			if res.StatusCode/100 != 2 {
				return fmt.Errorf("%s: HTTP %d", args[0], res.StatusCode)
			}
			return err
		},
	}
}
