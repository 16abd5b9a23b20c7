package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxCatchUp is how far back a periodic run reaches when the previous successful one
// ended longer ago than its window (calltrack work was down): from where that run
// ended, but at most this long ago.
const MaxCatchUp = 24 * time.Hour

// Scheduler runs each backfilled tenant's periodic backfill: at start, then every
// backfill.interval (jittered), over the last backfill.window but the last
// backfill.settle. Any number of replicas may run one: a run takes the tenant's lock,
// and a tenant another replica backfilled within the interval is skipped.
type Scheduler struct {
	Service *Service
	// Jitter is the fraction of the interval a run moves by, either way; default 0.1.
	Jitter float64
}

// RetryAfterFailure is the longest wait after a failed periodic run.
const RetryAfterFailure = 5 * time.Minute

// periodic is the last successful periodic run of a tenant, shared by the replicas.
type periodic struct {
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
}

// Run backfills until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, id := range s.Service.Tenants.IDs() {
		t, _ := s.Service.Tenants.Get(id)
		if err := Enabled(t); err != nil {
			s.Service.Log.Info().Str("tenant", id).Err(err).Msg("periodic backfill off for the tenant")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, id)
		}()
	}
	wg.Wait()
	return nil
}

func (s *Scheduler) jittered(d time.Duration) time.Duration {
	j := s.Jitter
	if j <= 0 {
		j = 0.1
	}
	return time.Duration(float64(d) * (1 - j + 2*j*rand.Float64()))
}

func (s *Scheduler) loop(ctx context.Context, tenantID string) {
	log := s.Service.Log.With().Str("tenant", tenantID).Logger()
	for {
		wait, err := s.RunDue(ctx, tenantID)
		switch {
		case errors.Is(err, ErrBusy):
			log.Debug().Msg("backfill running elsewhere; skipped")
		case err != nil && ctx.Err() == nil:
			log.Warn().Err(err).Dur("retry_in", wait).Msg("periodic backfill failed")
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// RunDue runs the tenant's periodic backfill unless a replica ran it within the
// interval, and returns how long to wait before the next look.
func (s *Scheduler) RunDue(ctx context.Context, tenantID string) (time.Duration, error) {
	svc := s.Service
	t, ok := svc.Tenants.Get(tenantID)
	if !ok {
		return time.Hour, ErrUnknownTenant
	}
	b := t.Backfill.WithDefaults()
	now := svc.now()
	last, err := s.last(ctx, tenantID)
	if err != nil {
		return min(b.Interval, RetryAfterFailure), err
	}
	if last != nil {
		if since := now.Sub(last.At); since < b.Interval*9/10 {
			return s.jittered(b.Interval - since), nil
		}
	}
	until := now.Add(-b.Settle)
	since := now.Add(-b.Window)
	if last != nil && last.Until.Before(since) {
		// A gap since the last run: look back to where it ended (within reason).
		since = maxTime(last.Until, now.Add(-MaxCatchUp))
	}
	_, err = svc.Run(ctx, tenantID, Options{Since: since, Until: until, Trigger: TriggerSchedule})
	if err != nil {
		if errors.Is(err, ErrBusy) {
			return s.jittered(b.Interval), err
		}
		return min(s.jittered(b.Interval), RetryAfterFailure), err
	}
	if err := s.save(context.WithoutCancel(ctx), tenantID, periodic{At: now, Until: until}); err != nil {
		return s.jittered(b.Interval), err
	}
	return s.jittered(b.Interval), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *Scheduler) last(ctx context.Context, tenantID string) (*periodic, error) {
	raw, err := s.Service.Redis.Get(ctx, s.Service.key(tenantID, "periodic")).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p periodic
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, nil // unreadable: as if none
	}
	return &p, nil
}

func (s *Scheduler) save(ctx context.Context, tenantID string, p periodic) error {
	b, _ := json.Marshal(p)
	return s.Service.Redis.Set(ctx, s.Service.key(tenantID, "periodic"), b, MaxCatchUp+MaxAge).Err()
}
