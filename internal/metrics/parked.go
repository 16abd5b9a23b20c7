package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Parked is the parked (unattributed) calls per tenant, as the last census of the
// call-state store saw them (latebind.Census). The oldest call's age is computed at
// scrape time from when calltrack received it, so it keeps growing between censuses.
// Every `work` replica exports the same values: aggregate with max, not sum.
type Parked struct {
	calls  *prometheus.Desc
	oldest *prometheus.Desc
	errors prometheus.Counter
	now    func() time.Time

	mu   sync.Mutex
	snap map[string]ParkedTenant
}

// ParkedTenant is one tenant's parked calls at a census.
type ParkedTenant struct {
	Calls  int
	Oldest time.Time // received time of the oldest parked call; zero when none
}

func newParked(reg prometheus.Registerer) *Parked {
	p := &Parked{
		calls: prometheus.NewDesc("calltrack_parked_calls",
			"Calls parked unattributed (no mapping for the agent, no fallback owner), by tenant, at the last census.",
			[]string{"tenant"}, nil),
		oldest: prometheus.NewDesc("calltrack_parked_oldest_age_seconds",
			"Age of the tenant's oldest parked call (since calltrack received it); absent when none is parked.",
			[]string{"tenant"}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "calltrack_parked_census_errors_total",
			Help: "Censuses of the parked calls that failed (their values are then dropped, not kept stale)."}),
		now: time.Now,
	}
	reg.MustRegister(p, p.errors)
	return p
}

// Describe implements prometheus.Collector.
func (p *Parked) Describe(ch chan<- *prometheus.Desc) { ch <- p.calls; ch <- p.oldest }

// Collect implements prometheus.Collector.
func (p *Parked) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for tenant, s := range p.snap {
		ch <- prometheus.MustNewConstMetric(p.calls, prometheus.GaugeValue, float64(s.Calls), tenant)
		if s.Calls > 0 && !s.Oldest.IsZero() {
			ch <- prometheus.MustNewConstMetric(p.oldest, prometheus.GaugeValue, max(0, now.Sub(s.Oldest).Seconds()), tenant)
		}
	}
}

// Set replaces the exported values with a census's (tenant → its parked calls).
func (p *Parked) Set(snap map[string]ParkedTenant) {
	p.mu.Lock()
	p.snap = snap
	p.mu.Unlock()
}

// Failed counts a failed census.
func (p *Parked) Failed() { p.errors.Inc() }
