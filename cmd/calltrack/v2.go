package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/provisional"
)

// defaultSummaryWait is the default of `calltrack dev --v2-summary-wait`.
const defaultSummaryWait = provisional.DefaultWait

// durationEnvOr is the Go duration in environment variable k (a flag's default), or
// def when it is unset or not a positive duration: flags are built for every
// subcommand, so a bad value is reported by the one that uses it (checkDurationEnv).
func durationEnvOr(k string, def time.Duration) time.Duration {
	d, err := time.ParseDuration(os.Getenv(k))
	if err != nil || d <= 0 {
		return def
	}
	return d
}

// checkDurationEnv refuses a value of environment variable k that durationEnvOr passed
// over, unless the flag it is the default of was given.
func checkDurationEnv(cmd *cobra.Command, flag, k string) error {
	if v := os.Getenv(k); v != "" && !cmd.Flags().Changed(flag) {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return usageError{fmt.Errorf("%s=%q is not a positive Go duration (e.g. 30s, 5m)", k, v)}
		}
	}
	return nil
}
