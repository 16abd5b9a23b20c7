package tenant

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Defaults of the backfill from MyOperator's call log (the tenants file's `backfill:`).
const (
	DefaultBackfillInterval = 15 * time.Minute
	DefaultBackfillWindow   = 2 * time.Hour
	DefaultBackfillSettle   = 5 * time.Minute
	// DefaultBackfillRate is MyOperator's pull-API limit per account: about 20 requests a
	// minute (its help centre; integrators throttle to it).
	DefaultBackfillRate = 20.0
)

// Backfill is a tenant's backfill settings: every Interval, `calltrack work` asks
// MyOperator's call-log search for the calls of the last Window (but the last Settle,
// whose webhooks may still be on their way) and publishes those calltrack never saw.
type Backfill struct {
	Disabled bool          // enabled by default for a tenant with a MyOperator API token
	Interval time.Duration // between periodic runs; default 15m
	Window   time.Duration // how far back a periodic run looks; default 2h
	Settle   time.Duration // calls younger than this wait for the next run; default 5m
	// RatePerMinute bounds the requests to the tenant's MyOperator account, shared by
	// every replica and by recording-link exchanges; default 20.
	RatePerMinute float64
}

// WithDefaults fills the unset settings.
func (b Backfill) WithDefaults() Backfill {
	if b.Interval <= 0 {
		b.Interval = DefaultBackfillInterval
	}
	if b.Window <= 0 {
		b.Window = DefaultBackfillWindow
	}
	if b.Settle <= 0 {
		b.Settle = DefaultBackfillSettle
	}
	if b.RatePerMinute <= 0 {
		b.RatePerMinute = DefaultBackfillRate
	}
	return b
}

// Validate names the first bad setting (after defaults).
func (b Backfill) Validate() error {
	b = b.WithDefaults()
	switch {
	case b.Interval < time.Minute:
		return fmt.Errorf("backfill.interval %s: at least 1m", b.Interval)
	case b.Window < b.Interval:
		return fmt.Errorf("backfill.window %s: at least the interval (%s), or calls between runs are never looked at", b.Window, b.Interval)
	case b.Window > 7*24*time.Hour:
		return fmt.Errorf("backfill.window %s: at most 7d (calltrack keeps what it has seen of a call for 7 days)", b.Window)
	case b.Settle >= b.Window:
		return fmt.Errorf("backfill.settle %s: less than the window (%s)", b.Settle, b.Window)
	case b.RatePerMinute > 600:
		return fmt.Errorf("backfill.rate %g/m: MyOperator allows about 20 a minute", b.RatePerMinute)
	}
	return nil
}

// backfillYAML is the tenants file's `backfill:` block.
type backfillYAML struct {
	Enabled  *bool  `yaml:"enabled"`
	Interval string `yaml:"interval"`
	Window   string `yaml:"window"`
	Settle   string `yaml:"settle"`
	Rate     string `yaml:"rate"` // requests a minute: 20, "20/m", "1/s", "600/h"
}

func (y backfillYAML) parse() (Backfill, error) {
	b := Backfill{Disabled: y.Enabled != nil && !*y.Enabled}
	for _, f := range []struct {
		name, v string
		dst     *time.Duration
	}{{"interval", y.Interval, &b.Interval}, {"window", y.Window, &b.Window}, {"settle", y.Settle, &b.Settle}} {
		if f.v == "" {
			continue
		}
		d, err := time.ParseDuration(f.v)
		if err != nil {
			return b, fmt.Errorf("backfill.%s %q: %w", f.name, f.v, err)
		}
		*f.dst = d
	}
	if y.Rate != "" {
		r, err := ParsePerMinute(y.Rate)
		if err != nil {
			return b, fmt.Errorf("backfill.rate: %w", err)
		}
		b.RatePerMinute = r
	}
	b = b.WithDefaults()
	return b, b.Validate()
}

// ParsePerMinute reads a rate as requests a minute: "20", "20/m", "20/min", "1/s", "600/h".
func ParsePerMinute(s string) (float64, error) {
	n, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q: want a positive number of requests, e.g. 20/m", s)
	}
	switch strings.TrimSpace(unit) {
	case "", "m", "min", "minute":
		return v, nil
	case "s", "sec", "second":
		return v * 60, nil
	case "h", "hour":
		return v / 60, nil
	}
	return 0, fmt.Errorf("%q: unit must be /s, /m or /h", s)
}
