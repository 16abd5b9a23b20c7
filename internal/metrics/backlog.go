package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Backlog is what waits in Kafka, as the last poll saw it (internal/backlog polls):
// each consumer group's lag, and how many records were ever appended to the topics
// that only grow when something went wrong (dead letters, rejected payloads). Every
// `work` replica exports the same values: aggregate with max, not sum.
type Backlog struct {
	lag      *prometheus.Desc
	appended *prometheus.Desc
	errors   prometheus.Counter

	mu   sync.Mutex
	snap BacklogSnapshot
}

// BacklogSnapshot is one poll's result.
type BacklogSnapshot struct {
	Lag      map[[2]string]int64 // {group, topic} → records not yet handled
	Appended map[string]int64    // topic → records ever appended
}

func newBacklog(reg prometheus.Registerer) *Backlog {
	b := &Backlog{
		lag: prometheus.NewDesc("calltrack_consumer_lag",
			"Records of the topic the consumer group has not handled yet (sum over partitions), at the last poll.",
			[]string{"group", "topic"}, nil),
		appended: prometheus.NewDesc("calltrack_topic_appended_total",
			"Records ever appended to the topic (sum of partition end offsets): its growth is the dead letters or rejected payloads.",
			[]string{"topic"}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "calltrack_backlog_poll_errors_total",
			Help: "Polls of consumer lag and topic offsets that failed (their values are then dropped, not kept stale)."}),
	}
	reg.MustRegister(b, b.errors)
	return b
}

// Describe implements prometheus.Collector.
func (b *Backlog) Describe(ch chan<- *prometheus.Desc) { ch <- b.lag; ch <- b.appended }

// Collect implements prometheus.Collector.
func (b *Backlog) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range b.snap.Lag {
		ch <- prometheus.MustNewConstMetric(b.lag, prometheus.GaugeValue, float64(v), k[0], k[1])
	}
	for t, v := range b.snap.Appended {
		ch <- prometheus.MustNewConstMetric(b.appended, prometheus.CounterValue, float64(v), t)
	}
}

// Set replaces the exported values with a poll's.
func (b *Backlog) Set(s BacklogSnapshot) {
	b.mu.Lock()
	b.snap = s
	b.mu.Unlock()
}

// Failed counts a failed poll.
func (b *Backlog) Failed() { b.errors.Inc() }
