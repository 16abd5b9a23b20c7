package main

import (
	"fmt"
	"os"
	"time"

	"github.com/calltrack/calltrack/internal/provisional"
)

// defaultSummaryWait is the default of `calltrack dev --v2-summary-wait`.
const defaultSummaryWait = provisional.DefaultWait

// durationEnvOr is the Go duration in environment variable k (a flag's default), or
// def when it is unset or not a positive duration (then it says so on stderr).
func durationEnvOr(k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		fmt.Fprintf(os.Stderr, "calltrack: %s=%q is not a positive Go duration (e.g. 30s, 5m); using %s\n", k, v, def)
		return def
	}
	return d
}
