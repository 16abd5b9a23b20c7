package popup

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/tenant"
)

// NotifierFactory returns the pop-up notifier of a tenant's CRM.
type NotifierFactory func(t *tenant.Tenant) (Notifier, error)

// Consumer consumes live call events and notifies the mapped CRM users while the call
// rings, is answered, ends. A pop-up that arrives late is useless, so events older
// than MaxAge are dropped (and counted); failures are not retried for the same reason.
type Consumer struct {
	Tenants   *tenant.Registry
	Notifiers NotifierFactory
	MaxAge    time.Duration // default 60 s
	Lag       prometheus.Observer
	Outcomes  *prometheus.CounterVec // tenant, outcome
	Log       zerolog.Logger
	Now       func() time.Time

	mu        sync.Mutex
	notifiers map[string]Notifier
}

// Handle is the kafkabus.Handler for the live topic.
func (p *Consumer) Handle(ctx context.Context, m kafka.Message) error {
	var ev call.Live
	if err := json.Unmarshal(m.Value, &ev); err != nil || ev.Tenant == "" {
		p.count(kafkabus.Header(m, kafkabus.HeaderTenant), "undecodable")
		return nil
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	at := ev.ReceivedAt
	if at.IsZero() {
		at = m.Time
	}
	lag := now.Sub(at)
	maxAge := p.MaxAge
	if maxAge <= 0 {
		maxAge = 60 * time.Second
	}
	if lag > maxAge {
		p.count(ev.Tenant, "dropped_late")
		return nil
	}
	t, ok := p.Tenants.Get(ev.Tenant)
	if !ok || len(ev.Owners) == 0 {
		p.count(ev.Tenant, "no_owner")
		return nil
	}
	n, err := p.notifier(t)
	if err != nil {
		p.count(ev.Tenant, "no_notifier")
		return nil
	}
	log := telemetry.Log(ctx, p.Log.With()).Str("tenant", ev.Tenant).Str("call_id", ev.CallID).Str("state", string(ev.State)).Logger()
	for _, o := range ev.Owners {
		if err := n.Notify(ctx, ev, o); err != nil {
			outcome := "failed"
			if crm.IsPermanent(err) {
				outcome = "rejected"
			}
			p.count(ev.Tenant, outcome)
			log.Warn().Err(err).Str("owner", o.CRMUserID).Msg("pop-up not delivered")
			continue
		}
		p.count(ev.Tenant, "notified")
	}
	if p.Lag != nil {
		p.Lag.Observe(lag.Seconds())
	}
	return nil
}

func (p *Consumer) count(tenant, outcome string) {
	if p.Outcomes != nil {
		p.Outcomes.WithLabelValues(tenant, outcome).Inc()
	}
}

func (p *Consumer) notifier(t *tenant.Tenant) (Notifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.notifiers[t.ID]; ok {
		return n, nil
	}
	n, err := p.Notifiers(t)
	if err != nil {
		return nil, err
	}
	if p.notifiers == nil {
		p.notifiers = map[string]Notifier{}
	}
	p.notifiers[t.ID] = n
	return n, nil
}
