package usersync

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// Scheduler runs a sync of every tenant at start, then again every interval
// (jittered, so replicas and tenants spread out). Replicas may all run one: the
// per-tenant lock lets one sync at a time, and a tenant synced recently by another
// replica is skipped.
type Scheduler struct {
	Service *Service
	// Interval overrides every tenant's sync.interval when positive.
	Interval time.Duration
	// Jitter is the fraction of the interval a run moves by, either way; default 0.1.
	Jitter float64
}

// Run syncs until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, id := range s.Service.Tenants.IDs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, id)
		}()
	}
	wg.Wait()
	return nil
}

func (s *Scheduler) interval(tenantID string) time.Duration {
	if s.Interval > 0 {
		return s.Interval
	}
	t, _ := s.Service.Tenants.Get(tenantID)
	return t.Sync.WithDefaults().Interval
}

// next is the wait before the next run: the interval ± jitter.
func (s *Scheduler) next(tenantID string) time.Duration {
	d := s.interval(tenantID)
	j := s.Jitter
	if j <= 0 {
		j = 0.1
	}
	return time.Duration(float64(d) * (1 - j + 2*j*rand.Float64()))
}

// RetryAfterFailure is the longest wait after a failed scheduled sync.
const RetryAfterFailure = 5 * time.Minute

func (s *Scheduler) loop(ctx context.Context, tenantID string) {
	log := s.Service.Log.With().Str("tenant", tenantID).Logger()
	// At start, skip only when another replica has just synced.
	minGap := time.Minute
	for {
		err := s.runOnce(ctx, tenantID, minGap)
		wait := s.next(tenantID)
		switch {
		case errors.Is(err, ErrNotConfigured):
			log.Info().Err(err).Msg("user sync off for the tenant")
			return
		case errors.Is(err, ErrBusy):
			log.Debug().Msg("user sync running elsewhere; skipped")
		case err != nil && ctx.Err() == nil:
			// A failed sync (an API down) is retried sooner than the next interval.
			wait = min(wait, RetryAfterFailure)
			log.Warn().Err(err).Dur("retry_in", wait).Msg("scheduled user sync failed")
		}
		minGap = min(s.interval(tenantID)/2, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// runOnce syncs the tenant unless some replica did within minGap.
func (s *Scheduler) runOnce(ctx context.Context, tenantID string, minGap time.Duration) error {
	if r, err := s.Service.loadReport(ctx, tenantID); err == nil && r.LastSyncAt != nil && s.Service.now().Sub(*r.LastSyncAt) < minGap {
		return nil
	}
	_, err := s.Service.Sync(ctx, tenantID, Options{})
	return err
}
