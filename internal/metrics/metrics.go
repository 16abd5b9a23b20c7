// Package metrics holds calltrack's Prometheus metrics. They are built on a registry
// passed in (not the global one) so several apps can live in one test process.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics of one process.
type Metrics struct {
	Registry        *prometheus.Registry
	Webhooks        *prometheus.CounterVec   // tenant, kind, outcome
	WebhookLatency  *prometheus.HistogramVec // kind
	PublishErrors   *prometheus.CounterVec   // topic
	WriterOutcomes  *prometheus.CounterVec   // tenant, kind, outcome
	CRMRequests     *prometheus.CounterVec   // tenant, crm, outcome
	CRMLatency      *prometheus.HistogramVec // crm
	UnknownV2Events *prometheus.CounterVec   // tenant, event_type
	Popups          *prometheus.CounterVec   // tenant, outcome (notified, dropped_late, ...)
	PopupLag        prometheus.Histogram     // seconds from webhook to pop-up
	ConsumerTracked *prometheus.GaugeVec     // group: bytes of messages fetched and not yet committed
	UserSync        *UserSync                // usersync.go
	Backlog         *Backlog                 // backlog.go: consumer lag, dead letters
	Parked          *Parked                  // parked.go: unattributed calls per tenant
	// CRMRequestsPerCall: the CRM requests one call log's create cost (searches, lead
	// creation, its share of a batched insert); CRMCallRequests counts the requests
	// of a call's create, update and find by what each one is (op: create, update,
	// find — the call log's own —, search, lead_create, fields), so amendments,
	// searches and leads show too.
	CRMRequestsPerCall *prometheus.HistogramVec // tenant, crm
	CRMCallRequests    *prometheus.CounterVec   // tenant, crm, op
}

// New registers calltrack's metrics (and the Go/process collectors) on a new registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calltrack_webhooks_total", Help: "Webhooks received, by tenant, kind and outcome.",
		}, []string{"tenant", "kind", "outcome"}),
		WebhookLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "calltrack_webhook_duration_seconds", Help: "Time to answer a webhook, including the Kafka ack.",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"kind"}),
		PublishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calltrack_publish_errors_total", Help: "Kafka publish failures, by topic.",
		}, []string{"topic"}),
		WriterOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calltrack_writer_outcomes_total", Help: "CRM writer results, by tenant, event kind and outcome.",
		}, []string{"tenant", "kind", "outcome"}),
		CRMRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calltrack_crm_requests_total", Help: "CRM write requests, by tenant, CRM and outcome.",
		}, []string{"tenant", "crm", "outcome"}),
		CRMLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "calltrack_crm_request_duration_seconds", Help: "CRM write latency.",
			Buckets: prometheus.DefBuckets,
		}, []string{"crm"}),
		UnknownV2Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calltrack_webhook_v2_unknown_events_total", Help: "Webhook v2 events of types calltrack does not handle.",
		}, []string{"tenant", "event_type"}),
	}
	m.Popups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calltrack_popups_total", Help: "Live call pop-ups, by tenant and outcome (notified, dropped_late, failed, ...).",
	}, []string{"tenant", "outcome"})
	m.PopupLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "calltrack_popup_lag_seconds", Help: "Time from the live webhook to the CRM pop-up.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60},
	})
	m.CRMRequestsPerCall = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "calltrack_crm_requests_per_call", Help: "CRM requests one call log's create cost (a batched insert counts its share).",
		Buckets: []float64{0.05, 0.1, 0.2, 0.5, 1, 1.5, 2, 3, 4, 6, 10},
	}, []string{"tenant", "crm"})
	m.CRMCallRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calltrack_crm_call_requests_total", Help: "CRM requests made for call logs, by operation (create, update, find: the call log's; search: a lead/contact search; lead_create; fields: field metadata).",
	}, []string{"tenant", "crm", "op"})
	m.ConsumerTracked = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "calltrack_consumer_tracked_bytes", Help: "Bytes of the messages a consumer group holds (fetched, not yet committed); at its bound it stops fetching.",
	}, []string{"group"})
	reg.MustRegister(m.Popups, m.PopupLag, m.CRMRequestsPerCall, m.CRMCallRequests, m.ConsumerTracked)
	reg.MustRegister(m.Webhooks, m.WebhookLatency, m.PublishErrors, m.WriterOutcomes, m.CRMRequests, m.CRMLatency, m.UnknownV2Events)
	m.UserSync = newUserSync(reg)
	m.Backlog = newBacklog(reg)
	m.Parked = newParked(reg)
	return m
}
