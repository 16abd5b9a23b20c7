package app

import (
	"net/http"
	"strconv"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/ratelimit"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/tenant"
)

// DefaultRateLimits per CRM kind, requests per second per credential: Kylas documents
// 5/s per API key (https://support.kylas.io/portal/en/kb/articles/kylas-api-rate-limit); Zoho limits concurrency and daily credits, 10/s keeps well inside.
var DefaultRateLimits = map[string]float64{call.CRMKylas: 5, call.CRMZoho: 10}

// Limiter returns the tenant's CRM rate limiter, shared through Redis by every replica.
func (a *App) Limiter(t *tenant.Tenant) *ratelimit.Limiter {
	if l, ok := a.limiters.Load(t.ID); ok {
		return l.(*ratelimit.Limiter)
	}
	rate := t.CRM.RateLimit
	if rate == 0 {
		rate = DefaultRateLimits[t.CRM.Kind]
	}
	l, _ := a.limiters.LoadOrStore(t.ID, ratelimit.New(a.Redis, a.Cfg.RedisPrefix, t.CRM.Kind+":"+t.ID, rate))
	return l.(*ratelimit.Limiter)
}

// CRMClient returns the HTTP client a tenant's CRM adapter uses: it counts requests and
// their latency by tenant, CRM and outcome.
func (a *App) CRMClient(t *tenant.Tenant) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &countingTransport{next: telemetry.Transport(http.DefaultTransport), m: a.Metrics, tenant: t.ID, crm: t.CRM.Kind}}
}

type countingTransport struct {
	next        http.RoundTripper
	m           *metrics.Metrics
	tenant, crm string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := c.next.RoundTrip(r)
	c.m.CRMLatency.WithLabelValues(c.crm).Observe(time.Since(start).Seconds())
	outcome := "error"
	if err == nil {
		outcome = strconv.Itoa(res.StatusCode/100) + "xx"
		if res.StatusCode == http.StatusTooManyRequests {
			outcome = "429"
		}
	}
	c.m.CRMRequests.WithLabelValues(c.tenant, c.crm, outcome).Inc()
	return res, err
}
