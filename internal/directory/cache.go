package directory

import (
	"context"
	"sync"
	"time"
)

// Cache keeps each tenant's users of a directory for TTL: the console's CRM-user
// dropdown and the admin API's check of a mapping's CRM user both need them, and a
// CRM's users API is slow and rate-limited. A nil *Cache keeps nothing.
type Cache struct {
	TTL time.Duration

	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	at    time.Time
	users []User
}

// Users returns the users of key (a tenant) listed less than TTL ago, else lists them
// from src and keeps them. A failed listing is not kept.
func (c *Cache) Users(ctx context.Context, key string, src Source) ([]User, error) {
	if c == nil {
		return src.Users(ctx)
	}
	c.mu.Lock()
	if e, ok := c.m[key]; ok && time.Since(e.at) < c.TTL {
		c.mu.Unlock()
		return e.users, nil
	}
	c.mu.Unlock()
	users, err := src.Users(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cached{}
	}
	c.m[key] = cached{at: time.Now(), users: users}
	c.mu.Unlock()
	return users, nil
}

// Forget drops the users kept for key: the next Users lists them again.
func (c *Cache) Forget(key string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}
