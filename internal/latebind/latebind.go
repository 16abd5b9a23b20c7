// Package latebind keeps calls nobody owns yet (unattributed: no mapping for the
// agent, no fallback owner) and writes them once somebody does. A parked call is
// journaled to the compacted topic calltrack.call.parked.v1 (key tenant:call, a
// tombstone once written) before it enters the tenant's parked set in Redis, so the
// set can be rebuilt from the topic when Redis loses it (Restore), and no parked call
// depends on the log topic's retention. The Redriver re-publishes a tenant's parked
// calls whose agent is mapped now.
package latebind

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callstate"
	"github.com/calltrack/calltrack/internal/kafkabus"
)

// Publisher is what parking needs of Kafka.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// Parking is the parked set: journal first, then Redis (callwriter.Parking).
type Parking struct {
	State     *callstate.Redis
	Publisher Publisher
	Topic     string // the parked-calls journal (Topics.Parked)
}

// Park journals the call and adds it to its tenant's parked set.
func (p *Parking) Park(ctx context.Context, l *call.Log) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	msg := kafkabus.Event(p.Topic, call.Key(l.Tenant, l.CallID), "calltrack/writer", l.Tenant, l.CallID, b)
	if err := p.Publisher.Publish(ctx, msg); err != nil {
		return fmt.Errorf("latebind: journal parked call %s: %w", l.CallID, err)
	}
	return p.State.AddParked(ctx, l)
}

// Unpark tombstones the call in the journal and takes it out of the parked set.
func (p *Parking) Unpark(ctx context.Context, tenant, callID string) error {
	msg := kafkabus.Event(p.Topic, call.Key(tenant, callID), "calltrack/writer", tenant, callID, nil)
	if err := p.Publisher.Publish(ctx, msg); err != nil {
		return fmt.Errorf("latebind: journal unparked call %s: %w", callID, err)
	}
	return p.State.RemoveParked(ctx, tenant, callID)
}

// RestoreStats says what a restore read and put back.
type RestoreStats struct {
	Records    int // journal records read
	Tombstones int // of which written calls
	Invalid    int // records skipped: bad key or value
	Parked     int // calls parked at the journal's end
	Restored   int // of which put back (the others are written since)
}

// Restore rebuilds the parked sets from the journal: it reads the topic to its end
// and parks again every call whose latest record is not a tombstone and which is not
// written. Run it when Redis lost its data (callstate.Redis.OnNewEpoch); running it
// again does no harm.
func Restore(ctx context.Context, k *kafkabus.Client, topic string, state *callstate.Redis) (RestoreStats, error) {
	var st RestoreStats
	latest := map[string]*call.Log{}
	err := k.ReadAll(ctx, topic, func(m kafka.Message) {
		st.Records++
		tenant, callID, ok := strings.Cut(string(m.Key), ":")
		if !ok || tenant == "" || callID == "" {
			st.Invalid++
			return
		}
		if len(m.Value) == 0 {
			st.Tombstones++
			delete(latest, string(m.Key))
			return
		}
		var l call.Log
		if err := json.Unmarshal(m.Value, &l); err != nil || l.Tenant != tenant || l.CallID != callID {
			st.Invalid++
			return
		}
		latest[string(m.Key)] = &l
	})
	if err != nil {
		return st, fmt.Errorf("latebind: restore from %s: %w", topic, err)
	}
	logs := make([]*call.Log, 0, len(latest))
	for _, l := range latest {
		logs = append(logs, l)
	}
	st.Parked = len(logs)
	st.Restored, err = state.RestoreParked(ctx, logs)
	return st, err
}
