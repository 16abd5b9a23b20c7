package latebind

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/metrics"
)

// CensusInterval is the time between censuses of the parked calls: a day-old alert
// needs no finer grain, and each census reads every parked call once.
const CensusInterval = time.Minute

// ParkedSets is what a census reads: the tenants' parked sets (callstate.Redis).
type ParkedSets interface {
	ScanParked(ctx context.Context, tenant string, fn func(callID, raw string) error) error
}

// Census counts each tenant's parked calls and finds the oldest, for the parked-calls
// metrics (calltrack_parked_calls, calltrack_parked_oldest_age_seconds) and the alert on
// calls parked longer than a day.
type Census struct {
	State    ParkedSets
	Tenants  func() []string
	Metrics  *metrics.Parked
	Interval time.Duration // default CensusInterval
	Log      zerolog.Logger
}

// Take counts once.
func (c *Census) Take(ctx context.Context) (map[string]metrics.ParkedTenant, error) {
	out := map[string]metrics.ParkedTenant{}
	for _, tenant := range c.Tenants() {
		var t metrics.ParkedTenant
		err := c.State.ScanParked(ctx, tenant, func(callID, raw string) error {
			t.Calls++
			var l call.Log
			if json.Unmarshal([]byte(raw), &l) == nil && !l.ReceivedAt.IsZero() &&
				(t.Oldest.IsZero() || l.ReceivedAt.Before(t.Oldest)) {
				t.Oldest = l.ReceivedAt
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("latebind: census of %s: %w", tenant, err)
		}
		out[tenant] = t
	}
	return out, nil
}

// Run takes a census every interval until ctx ends. A failed one clears the values (a
// stale count would hide a growing one) and is counted.
func (c *Census) Run(ctx context.Context) error {
	every := c.Interval
	if every <= 0 {
		every = CensusInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, every)
		snap, err := c.Take(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			c.Metrics.Failed()
			c.Metrics.Set(nil)
			c.Log.Warn().Err(err).Msg("parked-calls census failed")
		default:
			c.Metrics.Set(snap)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
