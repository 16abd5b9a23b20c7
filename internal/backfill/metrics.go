package backfill

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the backfill, per tenant. A nil *Metrics counts nothing.
type Metrics struct {
	Calls       *prometheus.CounterVec // tenant, outcome: found, known, published, unreadable
	Errors      *prometheus.CounterVec // tenant, stage: search, check, publish
	Runs        *prometheus.CounterVec // tenant, trigger, outcome: ok, failed, busy, dry_run
	LastSuccess *prometheus.GaugeVec   // tenant: Unix time of the last successful run that could write
}

// NewMetrics registers the backfill's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calltrack_backfill_calls_total",
			Help: "Calls the backfill found in MyOperator's call log, by tenant and outcome (found, known, published, unreadable). Dry runs are not counted.",
		}, []string{"tenant", "outcome"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calltrack_backfill_errors_total",
			Help: "Backfill failures, by tenant and stage (search: MyOperator's API; check: the traces in Redis; publish: Kafka).",
		}, []string{"tenant", "stage"}),
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calltrack_backfill_runs_total",
			Help: "Backfill runs, by tenant, trigger (schedule, admin, cli) and outcome (ok, failed, busy, dry_run).",
		}, []string{"tenant", "trigger", "outcome"}),
		LastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "calltrack_backfill_last_success_timestamp_seconds",
			Help: "When the tenant's last successful backfill (not a dry run) started, Unix seconds.",
		}, []string{"tenant"}),
	}
	reg.MustRegister(m.Calls, m.Errors, m.Runs, m.LastSuccess)
	return m
}

func (m *Metrics) calls(tenant, outcome string, dryRun bool) {
	if m != nil && !dryRun {
		m.Calls.WithLabelValues(tenant, outcome).Inc()
	}
}

func (m *Metrics) errorAt(tenant, stage string) {
	if m != nil {
		m.Errors.WithLabelValues(tenant, stage).Inc()
	}
}

func (m *Metrics) run(tenant, trigger, outcome string) {
	if m != nil {
		m.Runs.WithLabelValues(tenant, trigger, outcome).Inc()
	}
}

func (m *Metrics) success(tenant string, at time.Time) {
	if m != nil {
		m.LastSuccess.WithLabelValues(tenant).Set(float64(at.Unix()))
	}
}
