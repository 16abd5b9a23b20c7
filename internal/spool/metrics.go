package spool

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of a spool. The gauges are read from the spool when scraped.
type Metrics struct {
	Appended        prometheus.Counter
	Refused         *prometheus.CounterVec // reason: full, failed
	Drained         prometheus.Counter     // entries (deliveries); rate() is the drain rate
	DrainedMessages prometheus.Counter     // Kafka messages
}

// NewMetrics registers the spool's metrics on reg.
func NewMetrics(reg prometheus.Registerer, s *Spool) *Metrics {
	m := &Metrics{
		Appended: prometheus.NewCounter(prometheus.CounterOpts{Name: "calltrack_spool_appended_total",
			Help: "Webhook deliveries whose events went to the local spool (Kafka slow, down, or the spool not yet drained)."}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calltrack_spool_refused_total",
			Help: "Deliveries the spool could not take (answered 503), by reason: full, failed."}, []string{"reason"}),
		Drained: prometheus.NewCounter(prometheus.CounterOpts{Name: "calltrack_spool_drained_total",
			Help: "Spooled deliveries forwarded to Kafka and removed; rate() is the drain rate."}),
		DrainedMessages: prometheus.NewCounter(prometheus.CounterOpts{Name: "calltrack_spool_drained_messages_total",
			Help: "Kafka messages forwarded from the spool."}),
	}
	reg.MustRegister(m.Appended, m.Refused, m.Drained, m.DrainedMessages,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "calltrack_spool_messages",
			Help: "Webhook deliveries waiting in the spool (each holds one call event's Kafka messages)."},
			func() float64 { return float64(s.Stats().Entries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "calltrack_spool_bytes",
			Help: "Bytes the spool takes on disk."},
			func() float64 { return float64(s.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "calltrack_spool_max_bytes",
			Help: "The spool's bound on disk (CALLTRACK_SPOOL_MAX_BYTES)."},
			func() float64 { return float64(s.MaxBytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "calltrack_spool_oldest_age_seconds",
			Help: "Age of the oldest delivery waiting in the spool; 0 when empty."},
			func() float64 {
				if o := s.Stats().Oldest; !o.IsZero() {
					return time.Since(o).Seconds()
				}
				return 0
			}),
	)
	return m
}
