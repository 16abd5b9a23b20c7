package latebind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callstate"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
)

// Redrive limits: a re-published call is not re-published again before RedriveGap
// (the writer normally writes and unparks it within seconds), and at most
// RedriveMax times (a call the CRM keeps refusing ends in the DLQ and stays parked:
// it must not go round forever).
const (
	RedriveGap = 10 * time.Minute
	RedriveMax = 5
)

// Redriver does late binding: it re-publishes parked (unattributed) call logs whose
// agent now resolves to an active mapping, to the call-log topic with the call's own
// key. The writer re-resolves the owner when it consumes them, writes them and
// unparks them. Re-publishing twice is harmless (the writer is idempotent) but is
// avoided.
type Redriver struct {
	State    *callstate.Redis
	Parking  *Parking // takes a call written meanwhile out of the parked set
	Mappings *mapping.Store
	// Tenants give the fallback and department owners: a parked call is written once
	// its tenant has one for it, as once its agent is mapped.
	Tenants   *tenant.Registry
	Trace     *trace.Store
	Publisher Publisher
	Topics    kafkabus.Topics
	Log       zerolog.Logger

	mu      sync.Mutex
	running map[string]bool // tenant → a triggered redrive is running
	again   map[string]bool // tenant → triggered again meanwhile
	closed  bool
	ctx     context.Context // of triggered runs; cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Redrive re-publishes the tenant's parked calls whose agent now has an active
// mapping and returns how many it re-published.
func (r *Redriver) Redrive(ctx context.Context, tenant string) (int, error) {
	var (
		msgs    []kafka.Message
		calls   []*call.Log
		reasons []string
		n       int
	)
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		if err := r.Publisher.Publish(ctx, msgs...); err != nil {
			return fmt.Errorf("redrive %s: %w", tenant, err)
		}
		for i, l := range calls {
			_ = r.Trace.Record(ctx, tenant, l.CallID, trace.Update{Stage: trace.Stage{Stage: trace.StageReattributed, Kind: trace.KindLog,
				Detail: reasons[i] + "; call log re-published for writing"}})
		}
		n += len(msgs)
		msgs, calls, reasons = msgs[:0], calls[:0], reasons[:0]
		return nil
	}
	err := r.State.ScanParked(ctx, tenant, func(callID, raw string) error {
		l, why, err := r.candidate(ctx, tenant, callID, raw)
		if err != nil || l == nil {
			return err
		}
		msgs = append(msgs, kafkabus.Event(r.Topics.Log, call.Key(tenant, l.CallID), "calltrack/redrive", tenant, l.CallID, []byte(raw)))
		calls, reasons = append(calls, l), append(reasons, why)
		if len(msgs) >= 100 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("redrive %s: %w", tenant, err)
	}
	return n, flush()
}

// candidate decides whether one parked call is to be re-published now: it returns the
// call and why it has an owner now, or nil.
func (r *Redriver) candidate(ctx context.Context, tenant, callID, raw string) (*call.Log, string, error) {
	var l call.Log
	if err := json.Unmarshal([]byte(raw), &l); err != nil || l.CallID != callID {
		return nil, "", nil // not a call log of its own
	}
	why, err := r.owned(ctx, tenant, &l)
	if err != nil || why == "" {
		return nil, "", err
	}
	// Written meanwhile by another path: only the parking is left over.
	if _, written, err := r.State.Written(ctx, tenant, callID); err != nil {
		return nil, "", fmt.Errorf("redrive %s: %w", tenant, err)
	} else if written {
		if r.Parking != nil {
			err = r.Parking.Unpark(ctx, tenant, callID)
		} else {
			err = r.State.RemoveParked(ctx, tenant, callID)
		}
		return nil, "", err
	}
	ok, err := r.State.ClaimRedrive(ctx, tenant, callID, RedriveGap, RedriveMax)
	if err != nil {
		return nil, "", fmt.Errorf("redrive %s: %w", tenant, err)
	}
	if !ok {
		return nil, "", nil
	}
	return &l, why, nil
}

// owned says why the writer would now find an owner for a parked call — an active
// mapping of an agent it named (in any of its versions), else its department's or
// tenant's fallback owner, as the writer resolves it — or "" when it would not.
func (r *Redriver) owned(ctx context.Context, tenant string, l *call.Log) (string, error) {
	agents := l.EarlierAgents
	if l.Agent != nil {
		agents = append([]call.Agent{*l.Agent}, agents...)
	}
	for _, a := range agents {
		if _, err := r.Mappings.Resolve(ctx, tenant, a); err == nil {
			return "a mapping for agent " + a.Label() + " appeared", nil
		} else if !errors.Is(err, mapping.ErrNotFound) {
			return "", fmt.Errorf("redrive %s: %w", tenant, err)
		}
	}
	if r.Tenants != nil {
		if t, ok := r.Tenants.Get(tenant); ok {
			if o := t.FallbackOwnerOf(l); o != nil {
				return "the tenant's " + o.Source + " owner " + o.CRMUserID + " takes calls nobody else owns", nil
			}
		}
	}
	return "", nil
}

// Trigger runs a redrive of the tenant in the background, now: a mapping appeared.
// Triggers that come while one runs are folded into one more run after it.
func (r *Redriver) Trigger(tenant string) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	if r.running == nil {
		r.running, r.again = map[string]bool{}, map[string]bool{}
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	if r.running[tenant] {
		r.again[tenant] = true
		r.mu.Unlock()
		return
	}
	r.running[tenant] = true
	base := r.ctx
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		for {
			ctx, cancel := context.WithTimeout(base, 2*time.Minute)
			n, err := r.Redrive(ctx, tenant)
			cancel()
			if base.Err() == nil {
				r.report(tenant, n, err)
			}
			r.mu.Lock()
			if !r.again[tenant] || base.Err() != nil {
				delete(r.running, tenant)
				r.mu.Unlock()
				return
			}
			r.again[tenant] = false
			r.mu.Unlock()
		}
	}()
}

// Close stops triggered redrives and waits for them to end (before the producer and
// Redis close). Later triggers do nothing.
func (r *Redriver) Close() {
	r.mu.Lock()
	r.closed = true
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Run redrives every tenant each interval until ctx ends, so that no parked call
// waits on a lost trigger (a process that died between the mapping and the redrive,
// or a call parked just after its mapping appeared).
func (r *Redriver) Run(ctx context.Context, every time.Duration, tenants func() []string) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, id := range tenants() {
			n, err := r.Redrive(ctx, id)
			if ctx.Err() != nil {
				return nil
			}
			r.report(id, n, err)
		}
	}
}

func (r *Redriver) report(tenant string, n int, err error) {
	switch {
	case err != nil:
		r.Log.Warn().Err(err).Str("tenant", tenant).Msg("redrive of parked calls failed; the periodic redrive retries")
	case n > 0:
		r.Log.Info().Str("tenant", tenant).Int("calls", n).Msg("parked calls re-published for their new owners")
	}
}
