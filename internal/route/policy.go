package route

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Policy bounds how hard a write is tried.
type Policy struct {
	InPlace     int           // attempts before leaving the partition's stream (>= 1)
	InPlaceWait time.Duration // first wait between in-place attempts
	MaxAttempts int           // attempts through the retry topic before the DLQ
	Base        time.Duration // first retry-topic delay
	Cap         time.Duration // largest retry-topic delay
	// BusyWait is the wait before trying again a call another worker holds. It costs
	// no attempt and does not grow: the holder lets go within seconds, or its lease
	// lapses (CALLTRACK_WRITER_LEASE), and the call is tried again soon after either.
	BusyWait time.Duration
}

// DefaultPolicy carries a call through 30% transient failures: 3 quick attempts,
// then up to 10 scheduled ones (1 s doubling, capped at 2 min, ±50% jitter); a busy
// call is tried every 5 s (±50%) until its holder lets go.
func DefaultPolicy() Policy {
	return Policy{InPlace: 3, InPlaceWait: 100 * time.Millisecond, MaxAttempts: 10, Base: time.Second, Cap: 2 * time.Minute,
		BusyWait: 5 * time.Second}
}

// Delay is the wait before retry-topic attempt n (1-based), with jitter.
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Cap; i++ {
		d *= 2
	}
	return jitter(min(d, p.Cap))
}

// busyDelay is the wait before trying a busy call again.
func (p Policy) busyDelay() time.Duration {
	if p.BusyWait <= 0 {
		return p.Delay(1)
	}
	return jitter(p.BusyWait)
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)+1)) // 0.5d .. 1.5d
}

// breaker notices a tenant's CRM failing again and again, so the main consumer stops
// spending its lanes on in-place retries for that tenant and schedules its calls on
// the retry topic instead (which still tries each one when due).
type breaker struct {
	mu        sync.Mutex
	failures  int
	openUntil time.Time
}

const (
	breakerThreshold = 5
	breakerCooldown  = 10 * time.Second
)

func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Now().Before(b.openUntil)
}

func (b *breaker) failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.failures >= breakerThreshold {
		b.openUntil = time.Now().Add(breakerCooldown)
		b.failures = 0
	}
}

func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = 0
	b.openUntil = time.Time{}
}

// breakers holds one breaker per tenant.
type breakers struct {
	mu sync.Mutex
	m  map[string]*breaker
}

func (bs *breakers) of(tenant string) *breaker {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.m == nil {
		bs.m = map[string]*breaker{}
	}
	b, ok := bs.m[tenant]
	if !ok {
		b = &breaker{}
		bs.m[tenant] = b
	}
	return b
}
