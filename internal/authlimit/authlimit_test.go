package authlimit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

// clock is a test's time, which the limiter and its Redis window both read.
type clock struct{ now time.Time }

func (c *clock) read() time.Time                      { return c.now }
func (c *clock) set(start time.Time, d time.Duration) { c.now = start.Add(d) }

func newLimiter(env *testenv.Env, c *clock) *Limiter {
	l := New(env.Redis, env.Prefix, zerolog.Nop())
	l.now = c.read
	return l
}

// A client's failures are limited, its successes are not counted, and once the budget
// is spent every attempt is refused — the right token too — until the oldest failure
// is a minute old.
func TestAttempt(t *testing.T) {
	type attempt struct {
		at   time.Duration
		ip   string
		ok   bool
		want time.Duration // how long refused; 0: the authentication's answer stands
	}
	fails := func(ip string, n int, at time.Duration) []attempt {
		var as []attempt
		for range n {
			as = append(as, attempt{at, ip, false, 0})
		}
		return as
	}
	for _, tc := range []struct {
		name     string
		attempts []attempt
	}{
		{"the 11th failure in a minute is refused", append(fails("198.51.100.7", 10, 0),
			attempt{5 * time.Second, "198.51.100.7", false, 55 * time.Second})},
		{"so is the right token after the 10th", append(fails("198.51.100.7", 10, 0),
			attempt{time.Second, "198.51.100.7", true, 59 * time.Second})},
		{"until the oldest failure is a minute old", append(append(fails("198.51.100.7", 1, 0), fails("198.51.100.7", 9, 30*time.Second)...),
			attempt{59 * time.Second, "198.51.100.7", true, time.Second},
			attempt{time.Minute, "198.51.100.7", true, 0},
			attempt{time.Minute, "198.51.100.7", false, 0},                 // the 10th of the window again
			attempt{time.Minute, "198.51.100.7", true, 30 * time.Second})}, // spent until the 30 s ones leave
		{"successes are not counted", append(append([]attempt{
			{0, "198.51.100.7", true, 0}, {0, "198.51.100.7", true, 0}, {0, "198.51.100.7", true, 0}},
			fails("198.51.100.7", 9, time.Second)...),
			attempt{2 * time.Second, "198.51.100.7", true, 0})},
		{"other clients are not held", append(fails("198.51.100.7", 11, 0)[:10],
			attempt{0, "198.51.100.8", false, 0}, attempt{0, "198.51.100.8", true, 0})},
		{"an IPv6 /64 is one client", append(fails("2001:db8:1:2::a", 5, 0), append(fails("2001:db8:1:2::b", 5, 0),
			attempt{0, "2001:db8:1:2:ffff::1", true, time.Minute},
			attempt{0, "2001:db8:1:3::a", true, 0})...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			c := &clock{}
			start := time.Now()
			l := newLimiter(env, c)
			for i, a := range tc.attempts {
				c.set(start, a.at)
				assert.Equal(t, a.want, l.Attempt(t.Context(), AdminAPI, a.ip, a.ok), "attempt %d: %+v", i+1, a)
			}
		})
	}
}

// Replicas share the count; one that has not seen the client's failures refuses it at
// its next failure, and a success costs no Redis round trip.
func TestAttemptAcrossReplicas(t *testing.T) {
	env := testenv.New(t)
	c := &clock{now: time.Now()}
	a, b := newLimiter(env, c), newLimiter(env, c)
	for i := range PerMinute {
		require.Zero(t, a.Attempt(t.Context(), AdminAPI, "198.51.100.7", false), "failure %d on a", i+1)
	}
	assert.Equal(t, time.Minute, a.Attempt(t.Context(), AdminAPI, "198.51.100.7", true), "a saw the budget spent")
	assert.Zero(t, b.Attempt(t.Context(), AdminAPI, "198.51.100.7", true), "b has not: a success asks no one")
	assert.Equal(t, time.Minute, b.Attempt(t.Context(), AdminAPI, "198.51.100.7", false), "b's first failure is refused by the shared count")
	assert.Equal(t, time.Minute, b.Attempt(t.Context(), AdminAPI, "198.51.100.7", true), "then b refuses the client too")

	// Redis down: failures are not counted, answers stay as authentication says.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	assert.Zero(t, New(down, env.Prefix, zerolog.Nop()).Attempt(t.Context(), AdminAPI, "198.51.100.9", false))
	var nilLimiter *Limiter
	assert.Zero(t, nilLimiter.Attempt(t.Context(), AdminAPI, "198.51.100.9", false), "a nil limiter limits nothing")
}

// A lockout logs "client refused" once, at its first refusal, naming the client and
// the surface (and the tenant of a per-tenant budget): not at every refused guess,
// which would flood the log. The next lockout logs again.
func TestRefusalLoggedOncePerLockout(t *testing.T) {
	env := testenv.New(t)
	var logged bytes.Buffer
	c := &clock{now: time.Now()}
	l := New(env.Redis, env.Prefix, zerolog.New(&logged))
	l.now = c.read
	start := c.now
	lockout := func(at time.Duration, surface Surface, tenant, ip string) {
		t.Helper()
		c.set(start, at)
		for i := range PerMinute + 5 {
			wait := l.AttemptIn(t.Context(), surface, tenant, ip, false)
			require.Equal(t, i >= PerMinute, wait > 0, "attempt %d", i+1)
		}
	}
	lockout(0, Console, "", "198.51.100.7")
	assert.Positive(t, l.Attempt(t.Context(), AdminAPI, "198.51.100.7", true), "refused on the admin API too")
	lockout(0, ClickToCall, "demo", "198.51.100.8")
	lockout(2*time.Minute, Console, "", "198.51.100.7") // the first lockout is over: a new one

	var lines []map[string]any
	for line := range strings.Lines(logged.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		require.Equal(t, "too many failed authentications: client refused", m["message"], line)
		delete(m, "retry_after")
		lines = append(lines, m)
	}
	assert.Equal(t, []map[string]any{
		{"level": "warn", "client": "198.51.100.7", "surface": "console", "message": "too many failed authentications: client refused"},
		{"level": "warn", "client": "198.51.100.8", "surface": "click-to-call", "tenant": "demo", "message": "too many failed authentications: client refused"},
		{"level": "warn", "client": "198.51.100.7", "surface": "console", "message": "too many failed authentications: client refused"},
	}, lines)
}

func TestClientOf(t *testing.T) {
	for ip, want := range map[string]string{
		"198.51.100.7":         "198.51.100.7",
		"::ffff:198.51.100.7":  "198.51.100.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::1":      "2001:db8:1:2::/64",
		"not an address":       "not an address",
		"fe80::1%eth0":         "fe80::/64",
	} {
		assert.Equal(t, want, clientOf(ip), ip)
	}
}

// Many live refused clients (every /64 of a /48) do not make each refusal scan the
// whole map: a sweep waits for the map to double; lapsed clients still go at the next.
func TestRefusedClientsSweptAmortised(t *testing.T) {
	c := &clock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	l := New(nil, "p", zerolog.Nop())
	l.now = c.read
	sweeps := 0
	for i := range 10000 {
		before := l.nextSweep
		l.refuse(fmt.Sprintf("client-%d", i), time.Minute)
		if l.nextSweep != before {
			sweeps++
		}
	}
	assert.Len(t, l.refused, 10000, "live refusals are kept")
	assert.LessOrEqual(t, sweeps, 4, "sweeps of a growing map: 1024, 2048, 4096, 8192")
	c.now = c.now.Add(2 * time.Minute)
	for i := range l.nextSweep - len(l.refused) {
		l.refuse(fmt.Sprintf("late-%d", i), time.Minute)
	}
	l.refuse("last", time.Minute)
	assert.Less(t, len(l.refused), 10000, "the lapsed ones dropped once the map reached the next sweep")
	_, ok := l.refused["client-1"]
	assert.False(t, ok)
}
