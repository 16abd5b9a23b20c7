// Package overview keeps the hourly counts the console's Overview charts: calls by the
// writer's outcome, webhooks by answer, CRM requests by result (per tenant) and webhook
// answer times (all tenants). Every process (serve, work, dev) flushes the growth of
// its own Prometheus counters into Redis hashes, one per tenant and hour, so the charts
// add up every replica and outlive restarts; nothing is added to a request's path.
package overview

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/metrics"
)

// Keep is how long hourly counts are kept.
const Keep = 8 * 24 * time.Hour

// all is the hash of counts that are not per tenant (webhook answer times); tenant
// ids cannot start with "_".
const all = "_all"

// Field prefixes of the hourly hashes.
const (
	fieldCalls    = "calls:"    // + writer outcome of call logs (written, unattributed, retry, dead_lettered, duplicate, deferred)
	fieldWebhooks = "webhooks:" // + webhook outcome (accepted, duplicate, rejected, unauthorized, unavailable, ...)
	fieldCRM      = "crm:"      // + CRM request result (2xx, 4xx, 429, 5xx, error)
	fieldLatency  = "webhook_le:"
	fieldLatCount = "webhook_count"
)

// Recorder flushes a process's counters into the hourly hashes.
type Recorder struct {
	Redis   redis.UniversalClient
	Prefix  string
	Metrics *metrics.Metrics
	Every   time.Duration // default 5s
	Now     func() time.Time
	Log     zerolog.Logger

	mu   sync.Mutex
	last map[string]float64 // series → value at the last flush
}

func key(prefix, tenant string, hour time.Time) string {
	return fmt.Sprintf("%s:overview:{%s}:%s", prefix, tenant, hour.UTC().Format("2006010215"))
}

// Run flushes every Every until ctx ends, then once more.
func (r *Recorder) Run(ctx context.Context) {
	every := r.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.Log.Warn().Err(err).Msg("overview: last flush failed")
			}
			cancel()
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.Log.Warn().Err(err).Msg("overview: flush failed; counts kept for the next one")
			}
		}
	}
}

// Flush adds what the counters grew by since the last flush to the current hour.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]float64{}
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	hour := now().UTC().Truncate(time.Hour)
	cur := map[string]float64{}
	incr := map[string]map[string]float64{} // tenant → field → delta
	add := func(series, tenant, field string, v float64) {
		cur[series] = v
		d := v - r.last[series]
		if d < 0 {
			d = v // a counter that restarted
		}
		if d == 0 || tenant == "" {
			return
		}
		if incr[tenant] == nil {
			incr[tenant] = map[string]float64{}
		}
		incr[tenant][field] += d
	}
	m := r.Metrics
	each(m.WriterOutcomes, func(l map[string]string, d *dto.Metric) {
		if l["kind"] == "log" {
			add("w|"+l["tenant"]+"|"+l["outcome"], l["tenant"], fieldCalls+l["outcome"], d.GetCounter().GetValue())
		}
	})
	each(m.Webhooks, func(l map[string]string, d *dto.Metric) {
		add("h|"+l["tenant"]+"|"+l["kind"]+"|"+l["outcome"], l["tenant"], fieldWebhooks+l["outcome"], d.GetCounter().GetValue())
	})
	each(m.CRMRequests, func(l map[string]string, d *dto.Metric) {
		add("c|"+l["tenant"]+"|"+l["crm"]+"|"+l["outcome"], l["tenant"], fieldCRM+l["outcome"], d.GetCounter().GetValue())
	})
	each(m.WebhookLatency, func(l map[string]string, d *dto.Metric) {
		h := d.GetHistogram()
		add("l|"+l["kind"]+"|count", all, fieldLatCount, float64(h.GetSampleCount()))
		for _, b := range h.GetBucket() {
			le := strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)
			add("l|"+l["kind"]+"|"+le, all, fieldLatency+le, float64(b.GetCumulativeCount()))
		}
	})
	if len(incr) > 0 {
		_, err := r.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			for tenant, fields := range incr {
				k := key(r.Prefix, tenant, hour)
				for f, d := range fields {
					p.HIncrByFloat(ctx, k, f, d)
				}
				p.Expire(ctx, k, Keep)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("overview: flush: %w", err) // r.last unchanged: the next flush adds it
		}
	}
	r.last = cur
	return nil
}

// each calls fn with every series of a metric vector and its labels.
func each(c prometheus.Collector, fn func(map[string]string, *dto.Metric)) {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		labels := map[string]string{}
		for _, lp := range d.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		fn(labels, &d)
	}
}

// Hour is one hour of a tenant's counts.
type Hour struct {
	Start    time.Time
	Calls    map[string]int64 // by writer outcome
	Webhooks map[string]int64 // by answer
	CRM      map[string]int64 // by result
	// Webhook answer times of the hour, all tenants (ms); NaN when there were none.
	P50, P95, P99 float64
	Answered      int64 // webhooks timed in the hour
}

// Read returns the last hours of a tenant's counts, oldest first, the current hour last.
func Read(ctx context.Context, rdb redis.UniversalClient, prefix, tenant string, hours int, now time.Time) ([]Hour, error) {
	end := now.UTC().Truncate(time.Hour)
	out := make([]Hour, hours)
	tcmds := make([]*redis.MapStringStringCmd, hours)
	acmds := make([]*redis.MapStringStringCmd, hours)
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range hours {
			h := end.Add(-time.Duration(hours-1-i) * time.Hour)
			out[i].Start = h
			tcmds[i] = p.HGetAll(ctx, key(prefix, tenant, h))
			acmds[i] = p.HGetAll(ctx, key(prefix, all, h))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("overview: read: %w", err)
	}
	for i := range out {
		h := &out[i]
		h.Calls, h.Webhooks, h.CRM = map[string]int64{}, map[string]int64{}, map[string]int64{}
		for f, v := range tcmds[i].Val() {
			n, _ := strconv.ParseFloat(v, 64)
			switch {
			case strings.HasPrefix(f, fieldCalls):
				h.Calls[strings.TrimPrefix(f, fieldCalls)] = int64(math.Round(n))
			case strings.HasPrefix(f, fieldWebhooks):
				h.Webhooks[strings.TrimPrefix(f, fieldWebhooks)] = int64(math.Round(n))
			case strings.HasPrefix(f, fieldCRM):
				h.CRM[strings.TrimPrefix(f, fieldCRM)] = int64(math.Round(n))
			}
		}
		h.P50, h.P95, h.P99, h.Answered = latency(acmds[i].Val())
	}
	return out, nil
}

// latency computes quantiles (ms) from the hour's cumulative buckets, interpolating
// within a bucket as Prometheus's histogram_quantile does.
func latency(fields map[string]string) (p50, p95, p99 float64, count int64) {
	type bucket struct{ le, n float64 }
	var bs []bucket
	for f, v := range fields {
		if s, ok := strings.CutPrefix(f, fieldLatency); ok {
			le, err1 := strconv.ParseFloat(s, 64)
			n, err2 := strconv.ParseFloat(v, 64)
			if err1 == nil && err2 == nil {
				bs = append(bs, bucket{le, n})
			}
		}
	}
	total, _ := strconv.ParseFloat(fields[fieldLatCount], 64)
	if total <= 0 || len(bs) == 0 {
		return math.NaN(), math.NaN(), math.NaN(), 0
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	q := func(q float64) float64 {
		rank := q * total
		prevLe, prevN := 0.0, 0.0
		for _, b := range bs {
			if b.n >= rank {
				if b.n == prevN {
					return b.le * 1000
				}
				return (prevLe + (b.le-prevLe)*(rank-prevN)/(b.n-prevN)) * 1000
			}
			prevLe, prevN = b.le, b.n
		}
		return bs[len(bs)-1].le * 1000 // beyond the last bound: at least that
	}
	return q(0.5), q(0.95), q(0.99), int64(total)
}
