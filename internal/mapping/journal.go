package mapping

import (
	"context"
	"encoding/json"

	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
)

// Journal records every mapping change durably before Redis is changed: the
// compacted topic calltrack.mapping.v1 in production. It is also the audit trail
// of who mapped what.
type Journal interface {
	Record(ctx context.Context, c Change) error
}

// Change is one change of an agent's mapping.
type Change struct {
	Tenant   string
	UserID   string
	Mapping  *call.Mapping // the new mapping; nil for a deletion
	Previous *call.Mapping // the mapping replaced or removed; nil when there was none
	Actor    string        // who changed it: admin-api, sync, ...
}

// Header names of mapping journal records (besides kafkabus's ce_* and tenant).
const (
	HeaderActor  = "actor"          // who changed the mapping
	HeaderSource = "mapping_source" // the source of the mapping (of the removed one for a deletion)
	HeaderChange = "change"         // "put" or "delete"
)

// Publisher is what the Kafka journal needs of Kafka.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// KafkaJournal writes changes to a compacted topic: key "<tenant>:<myoperator user
// id>", value the mapping's JSON, a tombstone (null value) for a deletion.
type KafkaJournal struct {
	Publisher Publisher
	Topic     string
}

// Key is the journal key of an agent's mapping.
func Key(tenant, userID string) string { return tenant + ":" + userID }

// Record publishes c and returns once Kafka acknowledged it.
func (j KafkaJournal) Record(ctx context.Context, c Change) error {
	actor := c.Actor
	if actor == "" {
		actor = "unknown"
	}
	var value []byte
	change, source := "delete", ""
	if c.Previous != nil {
		source = c.Previous.Source
	}
	if c.Mapping != nil {
		b, err := json.Marshal(c.Mapping)
		if err != nil {
			return err
		}
		value, change, source = b, "put", c.Mapping.Source
	}
	msg := kafkabus.Event(j.Topic, Key(c.Tenant, c.UserID), "calltrack/mapping", c.Tenant, "", value,
		kafka.Header{Key: HeaderActor, Value: []byte(actor)},
		kafka.Header{Key: HeaderSource, Value: []byte(source)},
		kafka.Header{Key: HeaderChange, Value: []byte(change)})
	return j.Publisher.Publish(ctx, msg)
}
