package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"

	"github.com/calltrack/calltrack/internal/telemetry"
)

// Producer is the one shared producer of a process: acks from every in-sync replica and
// kafka-go's hash partitioning on the key (the one its Writer used, so a key stays on
// its partition across versions).
//
// It group-commits: one produce request per partition leader carries every message
// published since the previous request — across topics and partitions — and the next
// request goes out when that one is answered. kafka-go's Writer sends a request per
// partition batch and holds each batch open for a batch timeout, so a webhook's two
// events on two topics cost the broker two requests and the webhook up to that timeout
// (BENCHMARKS.md section 1 measures both). One request in flight per process also keeps
// each key's messages in the order they were published, through retries.
type Producer struct {
	transport kafka.RoundTripper
	addr      net.Addr
	linger    time.Duration

	mu      sync.Mutex
	queue   []queued
	spare   []queued
	closed  bool
	wake    chan struct{}
	stopped chan struct{}

	balancer kafka.Hash // the flusher's own
}

// Producer settings (kafka-go's Writer defaults where it had them).
const (
	produceAttempts   = 5
	produceBackoffMin = 50 * time.Millisecond
	produceBackoffMax = time.Second
	produceTimeout    = 10 * time.Second
	// maxRequestBytes caps one request's messages: under the broker's default
	// message.max.bytes (1 MiB), which bounds each partition's record batch.
	maxRequestBytes = 900 << 10
)

// ErrProducerClosed is Publish's error after Close.
var ErrProducerClosed = errors.New("kafka: producer closed")

var errEarlierFailed = errors.New("not sent: an earlier message of the same publish was not written")

// NewProducer builds the shared producer and starts its sender.
func NewProducer(c *Client) *Producer {
	t := c.Transport()
	if t == nil {
		t = kafka.DefaultTransport
	}
	p := &Producer{
		transport: t,
		addr:      kafka.TCP(c.Brokers()...),
		linger:    max(c.cfg.BatchTimeout, 0), // none by default: what is published meanwhile rides in the next request
		wake:      make(chan struct{}, 1),
		stopped:   make(chan struct{}),
	}
	go p.run()
	return p
}

// publish is one Publish call's messages; the sender settles them.
type publish struct {
	ctx  context.Context
	msgs []kafka.Message
	errs kafka.WriteErrors // set by the sender on the first failure
	left int               // the sender's count of unsettled messages
	done chan struct{}     // closed when left reaches 0
}

// queued is one message of a publish, waiting for the sender.
type queued struct {
	pub *publish
	i   int
}

// Publish writes the messages and returns once the cluster acknowledged all of them.
// Messages not yet sent when ctx ends are dropped; ones already in a request may still
// be written. With tracing on, it is a producer span whose context travels in each
// message's headers (W3C traceparent), so the writer's work joins the webhook's trace.
func (p *Producer) Publish(ctx context.Context, msgs ...kafka.Message) error {
	ctx, span := telemetry.Publish(ctx, msgs)
	err := p.publish(ctx, msgs)
	if err != nil {
		err = fmt.Errorf("kafka: publish: %w", err)
	}
	telemetry.End(span, err)
	return err
}

func (p *Producer) publish(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	pub := &publish{ctx: ctx, msgs: msgs, left: len(msgs), done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrProducerClosed
	}
	for i := range msgs {
		p.queue = append(p.queue, queued{pub, i})
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	select {
	case <-pub.done:
		if pub.errs != nil {
			return writeErrors{pub.errs}
		}
		return nil
	case <-ctx.Done():
		select {
		case <-pub.done: // settled at the same moment: its outcome, not a needless spool
			if pub.errs != nil {
				return writeErrors{pub.errs}
			}
			return nil
		default:
		}
		return ctx.Err()
	}
}

// Close sends what is queued and stops the sender.
func (p *Producer) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	<-p.stopped
	return nil
}

// run is the sender: it takes what is queued, sends it, and again, until closed.
func (p *Producer) run() {
	defer close(p.stopped)
	for range p.wake {
		if p.linger > 0 {
			time.Sleep(p.linger) // gather: the configured price of fewer requests
		}
		for {
			batch, closed := p.take()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			p.send(batch)
			clear(batch) // the spare buffer must not keep publishes alive
			p.mu.Lock()
			p.spare = batch[:0]
			p.mu.Unlock()
		}
	}
}

// take removes the oldest messages, up to maxRequestBytes (at least one), from the queue.
func (p *Producer) take() ([]queued, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, total := 0, int64(0)
	for n < len(p.queue) {
		total += size(p.queue[n].pub.msgs[p.queue[n].i]) // the consumer's estimate: generous, so requests stay under the limit
		if n > 0 && total > maxRequestBytes {
			break
		}
		n++
	}
	if n == len(p.queue) {
		batch := p.queue
		p.queue, p.spare = p.spare, nil
		return batch, p.closed
	}
	batch := append([]queued(nil), p.queue[:n]...)
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:]) // the tail must not keep publishes alive
	p.queue = p.queue[:rest]
	return batch, p.closed
}

// outgoing is a message of the batch being sent.
type outgoing struct {
	queued
	partition int32 // -1 until balanced
	settled   bool
}

func (o *outgoing) msg() *kafka.Message { return &o.pub.msgs[o.i] }

// settle records a message's outcome and releases its publish once all are settled.
func settle(o *outgoing, err error) {
	o.settled = true
	pub := o.pub
	if err != nil {
		if pub.errs == nil {
			pub.errs = make(kafka.WriteErrors, len(pub.msgs))
		}
		pub.errs[o.i] = err
	}
	if pub.left--; pub.left == 0 {
		close(pub.done)
	}
}

// send writes the batch, retrying what failed for a reason that may pass (a broker
// down, a leader moving) with a backoff, and settles every message.
func (p *Producer) send(batch []queued) {
	out := make([]outgoing, len(batch))
	for i, q := range batch {
		out[i] = outgoing{queued: q, partition: -1}
	}
	backoff := produceBackoffMin
	for attempt := 1; ; attempt++ {
		last := attempt == produceAttempts
		for i := range out {
			o := &out[i]
			switch {
			case o.settled:
			case o.pub.ctx.Err() != nil:
				settle(o, o.pub.ctx.Err()) // its publisher gave up: do not write it now
			case o.pub.errs != nil:
				// An earlier message of its publish failed (in an earlier request: a
				// publish larger than one request is split). The publisher sends them all
				// again; writing this one now would put it before that earlier one.
				settle(o, errEarlierFailed)
			}
		}
		retry := p.attempt(out, last)
		if !retry {
			return
		}
		time.Sleep(backoff) // the sender's own pace between attempts, not a synchronisation
		backoff = min(2*backoff, produceBackoffMax)
	}
}

// attempt sends the unsettled messages once: one produce request per partition leader.
// It settles what succeeded and what failed for good (everything when last), and says
// whether some are left to retry.
func (p *Producer) attempt(out []outgoing, last bool) bool {
	ctx, cancel := context.WithDeadline(context.Background(), attemptDeadline(out))
	defer cancel()
	fail := func(o *outgoing, err error) bool {
		if last || !retriable(err) {
			settle(o, err)
			return false
		}
		return true
	}
	var topics []string
	for i := range out {
		if o := &out[i]; !o.settled && !slices.Contains(topics, o.msg().Topic) {
			topics = append(topics, o.msg().Topic)
		}
	}
	if len(topics) == 0 {
		return false
	}
	meta, err := p.metadata(ctx, topics)
	retry := false
	if err != nil {
		for i := range out {
			if o := &out[i]; !o.settled {
				retry = fail(o, err) || retry
			}
		}
		return retry
	}
	// Balance and group: leader → request; a partition's messages in publish order.
	reqs := map[int32]*produceAPI.Request{}
	members := map[topicPartition][]int{} // indexes into out
	var parts []topicPartition
	for i := range out {
		o := &out[i]
		if o.settled {
			continue
		}
		tm, ok := meta[o.msg().Topic]
		if !ok || tm.err != nil {
			e := error(kafka.UnknownTopicOrPartition)
			if ok {
				e = tm.err
			}
			retry = fail(o, e) || retry
			continue
		}
		if o.partition < 0 || int(o.partition) >= len(tm.leaders) {
			o.partition = int32(p.balancer.Balance(*o.msg(), tm.ids...))
		}
		k := topicPartition{o.msg().Topic, o.partition}
		if _, seen := members[k]; !seen {
			parts = append(parts, k)
		}
		members[k] = append(members[k], i)
	}
	for _, k := range parts {
		topic, part := k.topic, k.partition
		leader := meta[topic].leaders[part]
		req := reqs[leader]
		if req == nil {
			req = &produceAPI.Request{Acks: int16(kafka.RequireAll), Timeout: brokerTimeoutMs(ctx)}
			reqs[leader] = req
		}
		idx := members[k]
		records := make([]kafka.Record, len(idx))
		for j, i := range idx {
			m := out[i].msg()
			t := m.Time
			if t.IsZero() {
				t = time.Now()
			}
			records[j] = kafka.Record{Time: t, Key: protocol.NewBytes(m.Key), Value: protocol.NewBytes(m.Value), Headers: m.Headers}
		}
		rp := produceAPI.RequestPartition{Partition: part, RecordSet: protocol.RecordSet{Records: protocol.NewRecordReader(records...)}}
		if n := len(req.Topics); n > 0 && req.Topics[n-1].Topic == topic {
			req.Topics[n-1].Partitions = append(req.Topics[n-1].Partitions, rp)
		} else {
			req.Topics = append(req.Topics, produceAPI.RequestTopic{Topic: topic, Partitions: []produceAPI.RequestPartition{rp}})
		}
	}
	// The leaders' requests go out together; each partition's answer settles its messages.
	type answer struct {
		req *produceAPI.Request
		res *produceAPI.Response
		err error
	}
	answers := make(chan answer, len(reqs))
	for _, req := range reqs {
		go func() {
			m, err := p.transport.RoundTrip(ctx, p.addr, req)
			res, _ := m.(*produceAPI.Response)
			if err == nil && res == nil {
				err = fmt.Errorf("kafka: produce: unexpected response %T", m)
			}
			answers <- answer{req, res, err}
		}()
	}
	for range reqs {
		a := <-answers
		got := map[topicPartition]error{}
		if a.err == nil {
			for _, t := range a.res.Topics {
				for _, rp := range t.Partitions {
					var e error
					if rp.ErrorCode != 0 {
						e = kafka.Error(rp.ErrorCode)
						if rp.ErrorMessage != "" {
							e = fmt.Errorf("%w: %s", e, rp.ErrorMessage)
						}
					}
					got[topicPartition{t.Topic, rp.Partition}] = e
				}
			}
		}
		for _, t := range a.req.Topics {
			for _, rp := range t.Partitions {
				k := topicPartition{t.Topic, rp.Partition}
				e, answered := got[k]
				switch {
				case a.err != nil:
					e = a.err
				case !answered:
					e = fmt.Errorf("kafka: produce: no answer for %s/%d", t.Topic, rp.Partition)
				}
				for _, i := range members[k] {
					if e == nil {
						settle(&out[i], nil)
					} else {
						retry = fail(&out[i], e) || retry
					}
				}
			}
		}
	}
	return retry
}

// attemptDeadline bounds an attempt by produceTimeout and, when every publisher waiting
// for it has a deadline, by the latest of those: past it nobody waits for the answer, and
// one unresponsive broker would hold every later publish for the whole produceTimeout.
func attemptDeadline(out []outgoing) time.Time {
	limit := time.Now().Add(produceTimeout)
	var latest time.Time
	for i := range out {
		if out[i].settled {
			continue
		}
		d, ok := out[i].pub.ctx.Deadline()
		if !ok {
			return limit
		}
		if d.After(latest) {
			latest = d
		}
	}
	if latest.IsZero() || latest.After(limit) {
		return limit
	}
	return latest
}

// brokerTimeoutMs is the produce request's own timeout (how long the broker may wait for
// its replicas): a little short of the attempt's, so that the broker answers before the
// client gives up and sends the batch again.
func brokerTimeoutMs(ctx context.Context) int32 {
	d, _ := ctx.Deadline()
	left := time.Until(d)
	return int32(max(left-left/10, time.Millisecond) / time.Millisecond)
}

// topicMeta is what the producer needs of a topic: its partitions' ids and leaders.
type topicMeta struct {
	ids     []int
	leaders map[int32]int32
	err     error
}

// metadata asks the transport, which answers from its cache (refreshed every few
// seconds), for the topics' partitions and leaders.
func (p *Producer) metadata(ctx context.Context, topics []string) (map[string]topicMeta, error) {
	m, err := p.transport.RoundTrip(ctx, p.addr, &metadataAPI.Request{TopicNames: topics})
	if err != nil {
		return nil, err
	}
	res, ok := m.(*metadataAPI.Response)
	if !ok {
		return nil, fmt.Errorf("kafka: metadata: unexpected response %T", m)
	}
	out := make(map[string]topicMeta, len(res.Topics))
	for _, t := range res.Topics {
		tm := topicMeta{leaders: make(map[int32]int32, len(t.Partitions))}
		if t.ErrorCode != 0 {
			tm.err = kafka.Error(t.ErrorCode)
		} else if len(t.Partitions) == 0 {
			tm.err = kafka.UnknownTopicOrPartition
		}
		for _, pt := range t.Partitions {
			tm.leaders[pt.PartitionIndex] = pt.LeaderID
		}
		// Partitions 0..n-1, as kafka-go's Writer balances over.
		tm.ids = make([]int, len(t.Partitions))
		for i := range tm.ids {
			tm.ids[i] = i
		}
		out[t.Name] = tm
	}
	return out, nil
}

// retriable says whether a produce error may pass: a Kafka error Kafka calls retriable,
// or anything on the way to the broker (refused, reset, timed out, no leader yet).
func retriable(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	return true
}

type topicPartition struct {
	topic     string
	partition int32
}

// writeErrors is kafka.WriteErrors said once per distinct error: kafka-go's own text
// repeats the error for every message (hundreds of copies for one spool batch).
type writeErrors struct{ kafka.WriteErrors }

func (e writeErrors) Error() string {
	counts := map[string]int{}
	var order []string
	for _, err := range e.WriteErrors {
		if err == nil {
			continue
		}
		s := err.Error()
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%s (×%d)", s, counts[s])
	}
	return fmt.Sprintf("%d of %d messages not written: %s", e.Count(), len(e.WriteErrors), strings.Join(parts, "; "))
}

// Unwrap lets errors.Is/As see each message's error and kafka.WriteErrors itself.
func (e writeErrors) Unwrap() []error {
	out := []error{e.WriteErrors}
	for _, err := range e.WriteErrors {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Event builds a message with calltrack's CloudEvents-style headers. The headers'
// values share one buffer: ingest builds one or two events a webhook (issue 14).
func Event(topic, key, source, tenant, callID string, value []byte, extra ...kafka.Header) kafka.Message {
	now := time.Now().UTC()
	id := NewID()
	buf := make([]byte, 0, len(id)+len(topic)+len(source)+len(time.RFC3339Nano)+len(tenant)+len(callID)+len(key))
	part := func(s string) []byte {
		start := len(buf)
		buf = append(buf, s...)
		return buf[start:len(buf):len(buf)]
	}
	h := make([]kafka.Header, 0, 6+len(extra)) // one allocation, the call id's included
	h = append(h,
		kafka.Header{Key: HeaderID, Value: part(id)},
		kafka.Header{Key: HeaderType, Value: part(topic)},
		kafka.Header{Key: HeaderSource, Value: part(source)},
	)
	start := len(buf)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	h = append(h, kafka.Header{Key: HeaderTime, Value: buf[start:len(buf):len(buf)]},
		kafka.Header{Key: HeaderTenant, Value: part(tenant)})
	if callID != "" {
		h = append(h, kafka.Header{Key: HeaderCallID, Value: part(callID)})
	}
	return kafka.Message{Topic: topic, Key: part(key), Value: value, Headers: append(h, extra...), Time: now}
}

// Header returns the value of the last header named key, or "".
func Header(m kafka.Message, key string) string {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return string(m.Headers[i].Value)
		}
	}
	return ""
}

// WithHeaders returns the headers of m with the given ones set (replacing same keys).
func WithHeaders(m kafka.Message, set ...kafka.Header) []kafka.Header {
	out := make([]kafka.Header, 0, len(m.Headers)+len(set))
	for _, h := range m.Headers {
		replaced := false
		for _, s := range set {
			if s.Key == h.Key {
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, h)
		}
	}
	return append(out, set...)
}
