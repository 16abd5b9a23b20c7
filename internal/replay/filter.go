package replay

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/kafkabus"
)

// KindOf names the calltrack topic a topic name is (log, recording, live, retry, dlq,
// rejected, mapping, parked), suffixed names included; other names are returned as they are.
func KindOf(topic string) string {
	for _, k := range defaultTopics {
		if topic == k.Name || strings.HasPrefix(topic, k.Name+".") {
			return k.Kind
		}
	}
	return topic
}

// defaultTopics is kafkabus.DefaultTopics().All(), built once: KindOf runs several
// times for every message a replay reads.
var defaultTopics = kafkabus.DefaultTopics().All()

// Resolve turns a kind ("dlq", "log", ...) into the deployment's topic name; any other
// name is returned as it is.
func Resolve(name string, t kafkabus.Topics) string {
	for _, k := range t.All() {
		if strings.EqualFold(name, k.Kind) {
			return k.Name
		}
	}
	return name
}

// Routed reports whether topic is one the writers route failed messages to (retry or
// dead-letter): its messages carry their original topic in a header.
func Routed(topic string) bool {
	k := KindOf(topic)
	return k == kafkabus.KindRetry || k == kafkabus.KindDLQ
}

// EventKind is the kind of event a message carries: the kind of its original topic for
// a routed message, else of its own topic.
func EventKind(m kafka.Message) string {
	if o := kafkabus.Header(m, kafkabus.HeaderOrigTopic); o != "" {
		return KindOf(o)
	}
	return KindOf(m.Topic)
}

// Tenant of a message: its header, else the first part of its key (tenant:call).
func Tenant(m kafka.Message) string {
	if t := kafkabus.Header(m, kafkabus.HeaderTenant); t != "" {
		return t
	}
	t, _, _ := strings.Cut(string(m.Key), ":")
	return t
}

// Filter keeps messages matching every given field; within a field, any value matches.
// Empty fields match everything.
type Filter struct {
	Tenants []string
	CallIDs []string // the call UID, or the afterCall log id
	Reasons []string // DLQ reason header: crm_rejected, retries_exhausted, undecodable, ...
	Types   []string // event kind (log, recording, live) or ce_type header
}

// Empty reports whether the filter keeps everything.
func (f Filter) Empty() bool {
	return len(f.Tenants) == 0 && len(f.CallIDs) == 0 && len(f.Reasons) == 0 && len(f.Types) == 0
}

// Match reports whether m passes the filter.
func (f Filter) Match(m kafka.Message) bool {
	if len(f.Tenants) > 0 && !slices.Contains(f.Tenants, Tenant(m)) {
		return false
	}
	if len(f.Reasons) > 0 && !slices.Contains(f.Reasons, kafkabus.Header(m, kafkabus.HeaderReason)) {
		return false
	}
	if len(f.Types) > 0 && !f.matchType(m) {
		return false
	}
	if len(f.CallIDs) > 0 && !f.matchCall(m) {
		return false
	}
	return true
}

func (f Filter) matchType(m kafka.Message) bool {
	kind, ceType := EventKind(m), kafkabus.Header(m, kafkabus.HeaderType)
	for _, t := range f.Types {
		if strings.EqualFold(t, kind) || t == ceType || KindOf(t) == kind {
			return true
		}
	}
	return false
}

func (f Filter) matchCall(m kafka.Message) bool {
	if slices.Contains(f.CallIDs, kafkabus.Header(m, kafkabus.HeaderCallID)) {
		return true
	}
	// The afterCall log id is an alias of the call (the admin API takes either).
	var body struct {
		CallID string `json:"call_id"`
		LogID  string `json:"log_id"`
	}
	if json.Unmarshal(m.Value, &body) != nil {
		return false
	}
	return (body.CallID != "" && slices.Contains(f.CallIDs, body.CallID)) ||
		(body.LogID != "" && slices.Contains(f.CallIDs, body.LogID))
}
