package crm

import (
	"sync"
	"time"
)

// SearchCache keeps a CRM's lead/contact search answers (hits and misses) for a short
// while. Why: one call write is several requests (searches, then the insert), so under
// flaky conditions a retry must not redo the searches that already succeeded, and calls
// from one number in a burst search once. Short-lived, so a lead created after a call
// is found by the next one. Safe for concurrent use; bounded in size.
type SearchCache[T any] struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedSearch[T]
}

type cachedSearch[T any] struct {
	hits []T
	at   time.Time
}

// searchCacheMax bounds the entries kept: past it, expired ones go, else all.
const searchCacheMax = 10_000

// NewSearchCache returns a cache whose answers live for ttl.
func NewSearchCache[T any](ttl time.Duration) *SearchCache[T] {
	return &SearchCache[T]{ttl: ttl, m: map[string]cachedSearch[T]{}}
}

// Get returns the cached answer for key, if fresh.
func (c *SearchCache[T]) Get(key string) ([]T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Since(e.at) > c.ttl {
		return nil, false
	}
	return e.hits, true
}

// Put caches the answer for key.
func (c *SearchCache[T]) Put(key string, hits []T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= searchCacheMax {
		for k, e := range c.m {
			if time.Since(e.at) > c.ttl {
				delete(c.m, k)
			}
		}
		if len(c.m) >= searchCacheMax {
			clear(c.m)
		}
	}
	c.m[key] = cachedSearch[T]{hits: hits, at: time.Now()}
}
