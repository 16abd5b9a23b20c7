package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// User-sync outcomes (calltrack_user_sync_runs_total{outcome}).
const (
	SyncOK     = "ok"
	SyncFailed = "failed" // a users API failed, the lock was lost, Redis refused
	SyncBusy   = "busy"   // another replica was syncing the tenant
)

// UserSync is user sync's metrics. A nil *UserSync records nothing.
type UserSync struct {
	Runs        *prometheus.CounterVec // tenant, outcome
	Duration    prometheus.Histogram
	LastSuccess *prometheus.GaugeVec   // tenant: unix time of the last successful sync
	Matched     *prometheus.GaugeVec   // tenant: mappings in force after it
	Unmatched   *prometheus.GaugeVec   // tenant: users left unmatched, either side
	Changes     *prometheus.CounterVec // change: mapping changes made by syncs
}

func newUserSync(reg prometheus.Registerer) *UserSync {
	m := &UserSync{
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calltrack_user_sync_runs_total",
			Help: "User syncs, by tenant and outcome (ok, failed, busy: another replica was syncing)."}, []string{"tenant", "outcome"}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "calltrack_user_sync_duration_seconds",
			Help:    "Time a successful user sync took (both users APIs, matching, mapping updates).",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}),
		LastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "calltrack_user_sync_last_success_timestamp_seconds",
			Help: "Unix time of the tenant's last successful user sync in this process."}, []string{"tenant"}),
		Matched: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "calltrack_user_sync_matched",
			Help: "Mappings in force after the tenant's last user sync."}, []string{"tenant"}),
		Unmatched: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "calltrack_user_sync_unmatched",
			Help: "Users (MyOperator or CRM) the tenant's last user sync left unmatched."}, []string{"tenant"}),
		Changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calltrack_user_sync_changes_total",
			Help: "Mapping changes made by user syncs, by change."}, []string{"change"}),
	}
	reg.MustRegister(m.Runs, m.Duration, m.LastSuccess, m.Matched, m.Unmatched, m.Changes)
	return m
}

// Succeeded records a finished sync of tenant.
func (m *UserSync) Succeeded(tenant string, at time.Time, took time.Duration, matched, unmatched int, changes []string) {
	if m == nil {
		return
	}
	m.Runs.WithLabelValues(tenant, SyncOK).Inc()
	m.Duration.Observe(took.Seconds())
	m.LastSuccess.WithLabelValues(tenant).Set(float64(at.UnixMilli()) / 1000)
	m.Matched.WithLabelValues(tenant).Set(float64(matched))
	m.Unmatched.WithLabelValues(tenant).Set(float64(unmatched))
	for _, c := range changes {
		m.Changes.WithLabelValues(c).Inc()
	}
}

// Ended records a sync that did not finish: outcome SyncFailed or SyncBusy.
func (m *UserSync) Ended(tenant, outcome string) {
	if m == nil {
		return
	}
	m.Runs.WithLabelValues(tenant, outcome).Inc()
}
