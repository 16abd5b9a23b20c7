// Package kafkabus is calltrack's Kafka plumbing over segmentio/kafka-go: the topic
// names, one shared producer configured once, topic creation, and the one consumer
// loop (fetch → handle → commit) every reader uses.
package kafkabus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Topics (docs/architecture.md).
const (
	TopicLive      = "calltrack.call.live.v1"
	TopicLog       = "calltrack.call.log.v1"
	TopicRecording = "calltrack.call.recording.v1"
	TopicRetry     = "calltrack.call.retry.v1"
	TopicDLQ       = "calltrack.call.dlq.v1"
	TopicRejected  = "calltrack.webhook.rejected.v1"
	TopicMapping   = "calltrack.mapping.v1"
	// TopicHeld holds Webhook v2 call.end events until their wait for a call.summary
	// ends (internal/provisional).
	TopicHeld = "calltrack.call.held.v1"
	// TopicParked is compacted: the latest copy of each parked (unattributed) call,
	// key tenant:call, a tombstone once it is written; the parked set is rebuilt from it.
	TopicParked = "calltrack.call.parked.v1"
)

// Kinds of topic: the short names the CLIs accept for them.
const (
	KindLive      = "live"
	KindLog       = "log"
	KindRecording = "recording"
	KindRetry     = "retry"
	KindDLQ       = "dlq"
	KindRejected  = "rejected"
	KindMapping   = "mapping"
	KindParked    = "parked"
	KindHeld      = "held"
)

// Dead-letter reasons (header "reason" on the DLQ topic).
const (
	ReasonCRMRejected      = "crm_rejected"      // the CRM refused the record: retrying cannot help
	ReasonRetriesExhausted = "retries_exhausted" // transient failures outlasted the retry schedule
	ReasonOutcomeUnknown   = "outcome_unknown"   // a create got no usable answer and the CRM could not be asked since
	ReasonUndecodable      = "undecodable"       // the event is not a valid call event
	ReasonUnknownTenant    = "unknown_tenant"    // the tenant is not in the tenants file
	ReasonUnknownTopic     = "unknown_topic"     // no writer for the event's topic
)

// DeadLetterReasons lists the reasons, for help texts and validation.
var DeadLetterReasons = []string{ReasonCRMRejected, ReasonRetriesExhausted, ReasonOutcomeUnknown,
	ReasonUndecodable, ReasonUnknownTenant, ReasonUnknownTopic}

// Header names carried on every message.
const (
	HeaderID        = "ce_id"
	HeaderType      = "ce_type"
	HeaderSource    = "ce_source"
	HeaderTime      = "ce_time"
	HeaderTenant    = "tenant"
	HeaderCallID    = "call_id"
	HeaderReason    = "reason"
	HeaderError     = "error"
	HeaderStatus    = "http_status"
	HeaderAttempts  = "attempts"
	HeaderDueAt     = "due_at"
	HeaderOrigTopic = "original_topic"
	HeaderOrigPart  = "original_partition"
	HeaderOrigOff   = "original_offset"
	HeaderDeferrals = "deferrals" // times a message was moved on because its tenant's lanes were full
)

// Config says how to reach the cluster. Zero values mean plaintext, no auth.
type Config struct {
	Brokers       []string
	ClientID      string
	TLS           bool
	SASLMechanism string // "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"
	SASLUsername  string
	SASLPassword  string `json:"-"`
	Partitions    int    // for topics calltrack creates; default 3
	Replication   int    // for topics calltrack creates; default 1
	// BatchTimeout is how long the producer waits for more messages before a request
	// when none is in flight (CALLTRACK_KAFKA_BATCH_TIMEOUT); none when zero. See Producer.
	BatchTimeout time.Duration
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers (CALLTRACK_KAFKA_BROKERS)")
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("kafka: unknown SASL mechanism %q", c.SASLMechanism)
	}
	return nil
}

func (c Config) transport() (*kafka.Transport, *kafka.Dialer, error) {
	t := &kafka.Transport{ClientID: c.clientID(), DialTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	d := &kafka.Dialer{ClientID: c.clientID(), Timeout: 10 * time.Second, DualStack: true}
	if c.TLS {
		t.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		d.TLS = t.TLS
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		m := plain.Mechanism{Username: c.SASLUsername, Password: c.SASLPassword}
		t.SASL, d.SASLMechanism = m, m
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		alg := scram.SHA256
		if strings.HasSuffix(strings.ToUpper(c.SASLMechanism), "512") {
			alg = scram.SHA512
		}
		m, err := scram.Mechanism(alg, c.SASLUsername, c.SASLPassword)
		if err != nil {
			return nil, nil, fmt.Errorf("kafka: sasl: %w", err)
		}
		t.SASL, d.SASLMechanism = m, m
	}
	return t, d, nil
}

func (c Config) clientID() string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return "calltrack"
}

// TopicSpec is a topic calltrack needs.
type TopicSpec struct {
	Name    string
	Configs map[string]string
}

// Topics names the topics one deployment uses. Production uses DefaultTopics; tests
// add a suffix so that many can share one broker.
type Topics struct {
	Live, Log, Recording, Retry, DLQ, Rejected, Mapping, Held, Parked string
}

// topicTable is the one table of calltrack's topics: kind, default name, settings, and
// where a deployment's name is kept in Topics.
var topicTable = []struct {
	kind, name string
	configs    map[string]string
	field      func(*Topics) *string
}{
	{KindLive, TopicLive, retention(1), func(t *Topics) *string { return &t.Live }},
	{KindLog, TopicLog, retention(14), func(t *Topics) *string { return &t.Log }},
	{KindRecording, TopicRecording, retention(14), func(t *Topics) *string { return &t.Recording }},
	{KindRetry, TopicRetry, retention(14), func(t *Topics) *string { return &t.Retry }},
	{KindDLQ, TopicDLQ, retention(30), func(t *Topics) *string { return &t.DLQ }},
	{KindRejected, TopicRejected, retention(30), func(t *Topics) *string { return &t.Rejected }},
	{KindMapping, TopicMapping, compacted, func(t *Topics) *string { return &t.Mapping }},
	{KindParked, TopicParked, compacted, func(t *Topics) *string { return &t.Parked }},
	{KindHeld, TopicHeld, retention(14), func(t *Topics) *string { return &t.Held }},
}

var compacted = map[string]string{"cleanup.policy": "compact"}

func retention(days int) map[string]string {
	return map[string]string{"retention.ms": fmt.Sprint((time.Duration(days) * 24 * time.Hour).Milliseconds())}
}

// DefaultTopics are the names in docs/architecture.md.
func DefaultTopics() Topics {
	var t Topics
	for _, e := range topicTable {
		*e.field(&t) = e.name
	}
	return t
}

// WithSuffix returns the names with suffix appended (test isolation).
func (t Topics) WithSuffix(suffix string) Topics {
	for _, e := range topicTable {
		*e.field(&t) += suffix
	}
	return t
}

// Named is a topic's kind and its name in a deployment.
type Named struct{ Kind, Name string }

// All lists the deployment's topics by kind, in the table's order.
func (t Topics) All() []Named {
	out := make([]Named, len(topicTable))
	for i, e := range topicTable {
		out[i] = Named{Kind: e.kind, Name: *e.field(&t)}
	}
	return out
}

// Specs lists every topic with its settings.
func (t Topics) Specs() []TopicSpec {
	out := make([]TopicSpec, len(topicTable))
	for i, e := range topicTable {
		out[i] = TopicSpec{Name: *e.field(&t), Configs: e.configs}
	}
	return out
}

// Client is the admin side: topic creation and metadata (readiness).
type Client struct {
	cfg    Config
	client *kafka.Client
	dialer *kafka.Dialer
}

// NewClient builds an admin client.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, d, err := cfg.transport()
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, dialer: d, client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: t, Timeout: 10 * time.Second}}, nil
}

// Dialer returns the dialer configured for this cluster (for readers).
func (c *Client) Dialer() *kafka.Dialer { return c.dialer }

// Transport returns a transport configured for this cluster (for writers).
func (c *Client) Transport() kafka.RoundTripper { return c.client.Transport }

// Brokers returns the bootstrap list.
func (c *Client) Brokers() []string { return c.cfg.Brokers }

// EnsureTopics creates the missing topics; existing ones are left as they are.
func (c *Client) EnsureTopics(ctx context.Context, specs []TopicSpec) error {
	parts, repl := c.cfg.Partitions, c.cfg.Replication
	if parts <= 0 {
		parts = 3
	}
	if repl <= 0 {
		repl = 1
	}
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: parts, ReplicationFactor: repl}
		for k, v := range s.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	res, err := c.client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("kafka: create topics: %w", err)
	}
	for name, terr := range res.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", name, terr)
		}
	}
	if err := c.waitTopics(ctx, specs); err != nil {
		return err
	}
	// Metadata can show a leader a moment before that leader serves the partition:
	// wait until each topic answers an offsets request (listOffsets retries "not leader").
	for _, s := range specs {
		parts, err := c.Partitions(ctx, s.Name)
		if err != nil {
			return err
		}
		if _, err := c.EndOffsets(ctx, s.Name, parts); err != nil {
			return fmt.Errorf("kafka: topic %s not ready: %w", s.Name, err)
		}
	}
	return nil
}

// waitTopics waits until every topic has leaders: a broker answers CreateTopics before
// the partitions are ready, and the first produce would fail.
func (c *Client) waitTopics(ctx context.Context, specs []TopicSpec) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		ready := err == nil
		if err == nil {
			for _, t := range md.Topics {
				if t.Error != nil || len(t.Partitions) == 0 {
					ready = false
					break
				}
				for _, p := range t.Partitions {
					if p.Error != nil || p.Leader.Host == "" {
						ready = false
					}
				}
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka: topics not ready: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Ping checks the cluster answers a metadata request (readiness).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return fmt.Errorf("kafka: metadata: %w", err)
	}
	return nil
}

// Raw exposes the kafka-go client for tools (offsets, group admin).
func (c *Client) Raw() *kafka.Client { return c.client }

// Reachable dials the first broker quickly; used to decide on fallbacks.
func Reachable(addr string, timeout time.Duration) bool {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// NewID returns a CloudEvents id.
func NewID() string { return uuid.NewString() }
