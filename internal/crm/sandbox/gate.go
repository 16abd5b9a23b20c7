// Package sandbox holds in-memory, contract-faithful fakes of the CRM APIs
// calltrack writes to. Tests point adapters at them through httptest; `calltrack
// dev` mounts them under /sandbox/{crm}/. Each sandbox serves the API paths the
// real service uses (authenticated like it) plus unauthenticated control paths
// (faults, stats, users, ...) for tests and demos.
package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Faults make a sandbox misbehave on adapter calls (writes and searches), never on
// the GET listings used to inspect what was written.
type Faults struct {
	ErrorRate float64 `json:"error_rate"`           // 0..1: share of adapter calls that fail
	Status    int     `json:"status,omitempty"`     // 400, 429, 500 or 503; 503 when omitted
	LatencyMS int     `json:"latency_ms,omitempty"` // added to every adapter call, failing or not
	// LostResponseRate 0..1: share of writes (creates, updates) that are applied — the
	// record is stored — and then answered by closing the connection with no response,
	// as when an answer is lost on the way back.
	LostResponseRate float64 `json:"lost_response_rate,omitempty"`
	// SearchLagMS: a record shows in searches (Kylas call-log search, Zoho COQL) only
	// this long after it was stored, as an index that lags behind writes.
	SearchLagMS int `json:"search_lag_ms,omitempty"`
}

// Validate checks the ranges the control endpoint accepts.
func (f Faults) Validate() error {
	switch {
	case f.ErrorRate < 0 || f.ErrorRate > 1:
		return fmt.Errorf("error_rate %v: want 0..1", f.ErrorRate)
	case f.LatencyMS < 0 || f.LatencyMS > 60_000:
		return fmt.Errorf("latency_ms %d: want 0..60000", f.LatencyMS)
	case f.LostResponseRate < 0 || f.LostResponseRate > 1:
		return fmt.Errorf("lost_response_rate %v: want 0..1", f.LostResponseRate)
	case f.SearchLagMS < 0 || f.SearchLagMS > 60_000:
		return fmt.Errorf("search_lag_ms %d: want 0..60000", f.SearchLagMS)
	}
	switch f.Status {
	case 0, http.StatusBadRequest, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable:
		return nil
	}
	return fmt.Errorf("status %d: want 400, 429, 500 or 503", f.Status)
}

func (f Faults) status() int {
	if f.Status == 0 {
		return http.StatusServiceUnavailable
	}
	return f.Status
}

// Stats is what GET /sandbox/{crm}/stats answers. Requests and MaxRPS1s count
// adapter calls (writes and searches, accepted or not), not GET listings.
type Stats struct {
	Requests   int            `json:"requests"`
	ByEndpoint map[string]int `json:"by_endpoint"` // "<METHOD path>" as the real API spells it, ids as {id}
	MaxRPS1s   int            `json:"max_rps_1s"`  // most adapter calls seen in one wall-clock second
	Rejected   int            `json:"rejected"`    // injected faults + rate-limit 429s + auth failures
	Duplicates int            `json:"duplicates"`  // creates whose call id (Kylas remoteId or note, Zoho "Call ID:") was already stored
	Lost       int            `json:"lost"`        // writes applied whose response was dropped (lost_response_rate)
}

// gate is the part every sandbox shares: it counts adapter calls, enforces the
// sandbox's own rate limit and injects faults.
type gate struct {
	now   func() time.Time
	limit int // accepted adapter calls per wall-clock second; 0 = unlimited

	mu       sync.Mutex
	rng      *rand.Rand
	seed     uint64
	faults   Faults
	stats    Stats
	sec      int64 // current wall-clock second (unix)
	seen     int   // adapter calls seen in sec
	accepted int   // adapter calls accepted in sec
}

func newGate(now func() time.Time, limit int, seed uint64) *gate {
	if now == nil {
		now = time.Now
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	g := &gate{now: now, limit: limit, seed: seed}
	g.reset()
	return g
}

func (g *gate) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rng = rand.New(rand.NewPCG(g.seed, g.seed^0x9e3779b97f4a7c15))
	g.faults = Faults{}
	g.stats = Stats{ByEndpoint: map[string]int{}}
	g.sec, g.seen, g.accepted = 0, 0, 0
}

// verdict is the gate's decision on one adapter call.
type verdict struct {
	status     int           // 0: go ahead; else answer this status
	rateLimit  bool          // the status is the sandbox's own rate limit, not a fault
	latency    time.Duration // sleep this long first (faults' latency)
	remaining  int           // rate-limit budget left in this second (-1: unlimited)
	retryAfter time.Duration
	lose       bool // a write to apply and then answer by closing the connection
}

// count records one adapter call on endpoint; auth is checked after it.
func (g *gate) count(endpoint string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stats.Requests++
	g.stats.ByEndpoint[endpoint]++
	if s := g.now().Unix(); s != g.sec {
		g.sec, g.seen, g.accepted = s, 0, 0
	}
	g.seen++
	g.stats.MaxRPS1s = max(g.stats.MaxRPS1s, g.seen)
}

// note counts a call on endpoint in ByEndpoint only: requests that are not API
// calls (e.g. Zoho's OAuth token endpoint, on another host in production) are
// shown without inflating Requests or MaxRPS1s.
func (g *gate) note(endpoint string) {
	g.mu.Lock()
	g.stats.ByEndpoint[endpoint]++
	g.mu.Unlock()
}

// reject counts a rejection decided outside the gate (auth failures).
func (g *gate) reject() {
	g.mu.Lock()
	g.stats.Rejected++
	g.mu.Unlock()
}

// admit applies the rate limit, then the faults, to an adapter call already counted.
// write: the call creates or changes a record (it may lose its response).
func (g *gate) admit(write bool) verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if s := now.Unix(); s != g.sec { // count and admit straddled a second boundary
		g.sec, g.seen, g.accepted = s, 1, 0
	}
	v := verdict{remaining: -1, latency: time.Duration(g.faults.LatencyMS) * time.Millisecond}
	if g.limit > 0 {
		if g.accepted >= g.limit {
			g.stats.Rejected++
			// The window is the wall-clock second: the next one starts within 1 s.
			return verdict{status: http.StatusTooManyRequests, rateLimit: true, remaining: 0, retryAfter: time.Second}
		}
		g.accepted++
		v.remaining = g.limit - g.accepted
	}
	if g.faults.ErrorRate > 0 && g.rng.Float64() < g.faults.ErrorRate {
		g.stats.Rejected++
		v.status = g.faults.status()
		if v.status == http.StatusTooManyRequests {
			v.retryAfter = time.Second
		}
	}
	if v.status == 0 && write && g.faults.LostResponseRate > 0 && g.rng.Float64() < g.faults.LostResponseRate {
		v.lose = true
		g.stats.Lost++
	}
	return v
}

// searchLag is how long a stored record stays out of searches.
func (g *gate) searchLag() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Duration(g.faults.SearchLagMS) * time.Millisecond
}

// serve runs h, or for a lost response runs h on a writer that discards the answer
// and then closes the client's connection without a response (hijacked; where the
// server cannot hijack, net/http's ErrAbortHandler does the same).
func serve(v verdict, h http.HandlerFunc, w http.ResponseWriter, r *http.Request) {
	if !v.lose {
		h(w, r)
		return
	}
	h(discard{h: http.Header{}}, r)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// discard is a ResponseWriter that drops what is written.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// setHeaders writes the rate-limit headers of a verdict for the Zoho sandbox (Kylas
// sends its own: Kylas.setRateHeaders). X-RateLimit-Reset is in seconds from now (the
// window is one wall-clock second).
func (g *gate) setHeaders(h http.Header, v verdict) {
	if g.limit > 0 {
		h.Set("X-RateLimit-Limit", strconv.Itoa(g.limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(max(v.remaining, 0)))
		h.Set("X-RateLimit-Reset", "1")
	}
	if v.retryAfter > 0 {
		h.Set("Retry-After", v.retrySeconds())
	}
}

// retrySeconds is the verdict's wait in whole seconds, rounded up.
func (v verdict) retrySeconds() string {
	return strconv.Itoa(int((v.retryAfter + time.Second - 1) / time.Second))
}

func (g *gate) setFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	g.mu.Lock()
	g.faults = f
	g.mu.Unlock()
	return nil
}

func (g *gate) getFaults() Faults {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.faults
}

func (g *gate) snapshot(duplicates int) Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.ByEndpoint = make(map[string]int, len(g.stats.ByEndpoint))
	for k, v := range g.stats.ByEndpoint {
		s.ByEndpoint[k] = v
	}
	s.Duplicates = duplicates
	return s
}

// sleep waits d or until ctx ends (a client that gave up must not pin the handler).
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeStrict decodes a control body, refusing unknown fields so a typo
// ("errorRate") is a 400 instead of a silent no-op.
func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
