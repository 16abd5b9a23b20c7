package writer

import (
	"sync"
	"time"
)

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

func (w *Writer) breaker(tenant string) *breaker {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.breakers == nil {
		w.breakers = map[string]*breaker{}
	}
	b, ok := w.breakers[tenant]
	if !ok {
		b = &breaker{}
		w.breakers[tenant] = b
	}
	return b
}

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
