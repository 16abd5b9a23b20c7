// Package replay re-drives what failed: it reads a topic by time or offset window,
// with filters, and re-publishes the matching messages to a live topic (for dead-lettered
// and retry messages, by default the topic they came from). It never tails a topic: the
// window's end is fixed when the replay starts. Replays are safe to repeat because the
// writers are idempotent per tenant+call.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/time/rate"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/trace"
)

// Headers a replayed message carries.
const (
	HeaderReplayed     = "replayed"      // "true"
	HeaderReplayedFrom = "replayed_from" // <topic>/<partition>@<offset> it was read from
	HeaderReplayedAt   = "replayed_at"   // RFC 3339
)

// routing headers are the writer's retry/dead-letter bookkeeping: a replayed message
// starts afresh (attempts from zero, no due time), so they are dropped.
var routing = []string{kafkabus.HeaderAttempts, kafkabus.HeaderDueAt, kafkabus.HeaderReason, kafkabus.HeaderError,
	kafkabus.HeaderStatus, kafkabus.HeaderOrigTopic, kafkabus.HeaderOrigPart, kafkabus.HeaderOrigOff}

// ErrBadTarget means the replay's target topic cannot take replayed messages.
var ErrBadTarget = errors.New("replay: bad target")

// Publisher writes messages and returns once the cluster has acknowledged them.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// Options of a replay.
type Options struct {
	Kafka     *kafkabus.Client
	Publisher Publisher       // not used on a dry run
	Topics    kafkabus.Topics // the deployment's topic names (kinds such as "dlq" resolve to them)
	// Trace, when set, gets a "replayed" stage on each replayed call's trace.
	Trace *trace.Store

	Topic  string // source: a topic name or a kind (dlq, retry, log, recording, live)
	Window Window
	Filter Filter
	// To is the target topic; empty: a routed (DLQ/retry) message goes back to the topic
	// in its original_topic header, any other to the topic it was read from.
	To     string
	DryRun bool
	Rate   float64 // messages per second; 0: as fast as the cluster acknowledges
	// Reattribute drops the owner that ingest resolved from call logs, so the writer
	// attributes them with the mappings of now (after a wrong mapping was fixed).
	Reattribute bool

	Progress io.Writer // where progress goes (stderr); nil: none
	Terminal bool      // Progress is a terminal: draw a bar

	Now func() time.Time
}

// Summary is what a replay read and (would have) replayed.
type Summary struct {
	Topic    string
	Window   Window
	DryRun   bool
	Read     int // records read in the window's offset ranges
	Matched  int // in the window and through the filter
	Replayed int // published (on a dry run: would be)
	// Reattributed counts the call logs replayed without their ingest-time owner.
	Reattributed int
	Skipped      map[string]int // matched but not replayable, by why
	ByTenant     map[string]int
	ByType       map[string]int
	ByReason     map[string]int
	ByTarget     map[string]int
	Took         time.Duration
}

func newSummary(topic string, w Window, dry bool) Summary {
	return Summary{Topic: topic, Window: w, DryRun: dry, Skipped: map[string]int{}, ByTenant: map[string]int{},
		ByType: map[string]int{}, ByReason: map[string]int{}, ByTarget: map[string]int{}}
}

// Run replays per o, prints the summary to out (the last line reads `replayed N
// messages`, or `would replay N messages` on a dry run) and returns it. Interrupted or
// failed, it still prints what it did before returning the error.
func Run(ctx context.Context, o Options, out io.Writer) (Summary, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	src := Resolve(o.Topic, o.Topics)
	sum := newSummary(src, o.Window, o.DryRun)
	start := o.Now()
	if src == "" {
		return sum, fmt.Errorf("%w: no source topic (--topic)", ErrBadTarget)
	}
	if o.Kafka == nil || (!o.DryRun && o.Publisher == nil) {
		return sum, errors.New("replay: Kafka client and publisher are required")
	}
	to := ""
	if o.To != "" {
		to = Resolve(o.To, o.Topics)
		if err := replayable(to); err != nil {
			return sum, err
		}
	}
	scan, err := Plan(ctx, o.Kafka, src, o.Window)
	if err != nil {
		return sum, err
	}
	r := &run{ctx: ctx, o: o, sum: &sum, to: to, checked: map[string]error{},
		prog: NewProgress(o.Progress, o.Terminal, verb(o.DryRun), scan.Total(), o.Now)}
	if o.Rate > 0 {
		r.lim = rate.NewLimiter(rate.Limit(o.Rate), 1)
		r.batch = int(min(max(o.Rate/10, 1), maxBatch))
	} else {
		r.batch = maxBatch
	}
	err = scan.Each(ctx, r.handle)
	if err == nil {
		err = r.flush(ctx)
	}
	// What is in flight is finished (and counted) whatever stopped the scan.
	err = errors.Join(err, r.wait())
	r.prog.Done()
	sum.Took = o.Now().Sub(start)
	sum.Print(out)
	if err != nil {
		return sum, fmt.Errorf("replay stopped after %d of %d matching messages: %w", sum.Replayed, sum.Matched, err)
	}
	return sum, nil
}

func verb(dry bool) string {
	if dry {
		return "to replay"
	}
	return "replayed"
}

// replayable refuses targets whose messages only the writers may produce, or whose
// records are not call events: replaying there would corrupt state, not re-drive it.
func replayable(topic string) error {
	switch KindOf(topic) {
	case kafkabus.KindDLQ, kafkabus.KindRetry:
		return fmt.Errorf("%w: %s is written by the writers only (replay to the topic the messages came from)", ErrBadTarget, topic)
	case kafkabus.KindRejected:
		return fmt.Errorf("%w: %s holds raw payloads, not events", ErrBadTarget, topic)
	case kafkabus.KindMapping:
		return fmt.Errorf("%w: %s is the mapping journal; replaying it would bring back old mappings (use `calltrack mappings rebuild`)", ErrBadTarget, topic)
	case kafkabus.KindParked:
		return fmt.Errorf("%w: %s is the parked-calls journal; replaying it would bring back written calls (use `calltrack parked rebuild`)", ErrBadTarget, topic)
	}
	return nil
}

// maxBatch is the most messages published at once (and the bytes, below): a batch's
// acknowledgement (acks=all) costs a round trip, so batches are large and one is
// published while the next is read.
const (
	maxBatch      = 1000
	maxBatchBytes = 768 << 10
)

type run struct {
	ctx          context.Context
	o            Options
	sum          *Summary
	to           string
	checked      map[string]error // target topic → exists?
	pending      []kafka.Message
	pendingBytes int
	batch        int
	lim          *rate.Limiter
	prog         *Progress
	inflight     []*batchJob // batches being traced or published, oldest first (two at most)
}

// batchJob is one batch on its way out: its traces are written while the batch before
// it is published, then it is published once that one is.
type batchJob struct {
	n         int
	published chan struct{} // closed when done
	err       error
}

func (r *run) handle(m kafka.Message) error {
	r.sum.Read++
	r.prog.Read++
	defer r.prog.Tick()
	if !r.o.Window.Contains(m) || !r.o.Filter.Match(m) {
		return nil
	}
	r.sum.Matched++
	r.prog.Matched++
	target, why := r.target(m)
	if why == "" {
		if err := r.exists(target); err != nil {
			return err
		}
	}
	if why != "" {
		r.sum.Skipped[why]++
		return nil
	}
	r.sum.ByTenant[orNone(Tenant(m))]++
	r.sum.ByType[orNone(EventKind(m))]++
	if reason := kafkabus.Header(m, kafkabus.HeaderReason); reason != "" || Routed(m.Topic) {
		r.sum.ByReason[orNone(reason)]++
	}
	r.sum.ByTarget[target]++
	if r.o.Reattribute && EventKind(m) == "log" {
		r.sum.Reattributed++
	}
	if r.o.DryRun {
		r.sum.Replayed++
		r.prog.Sent++
		return nil
	}
	if r.lim != nil {
		if err := r.lim.Wait(r.ctx); err != nil {
			return err
		}
	}
	rm := r.replayed(m, target)
	r.pending = append(r.pending, rm)
	r.pendingBytes += len(rm.Key) + len(rm.Value)
	if len(r.pending) >= r.batch || r.pendingBytes >= maxBatchBytes {
		return r.flush(r.ctx)
	}
	return nil
}

// target is where m goes, or why it cannot be replayed.
func (r *run) target(m kafka.Message) (string, string) {
	if r.to != "" {
		return r.to, ""
	}
	if !Routed(m.Topic) {
		return m.Topic, ""
	}
	orig := kafkabus.Header(m, kafkabus.HeaderOrigTopic)
	if orig == "" {
		return "", "no original_topic header (give --to)"
	}
	if err := replayable(orig); err != nil {
		return "", "original topic " + orig + " is not replayable"
	}
	return orig, ""
}

// exists checks a target topic once: the producer would otherwise retry a missing
// topic for a while and fail with a less helpful error.
func (r *run) exists(topic string) error {
	err, ok := r.checked[topic]
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err = r.o.Kafka.Partitions(ctx, topic)
		cancel()
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrBadTarget, err)
		}
		r.checked[topic] = err
	}
	return err
}

// replayed is m as re-published: same key, value and call headers (ce_id included: it
// is the same event, delivered again), routing headers dropped, replay headers added.
func (r *run) replayed(m kafka.Message, target string) kafka.Message {
	hs := make([]kafka.Header, 0, len(m.Headers)+3)
	for _, h := range m.Headers {
		if !slices.Contains(routing, h.Key) && h.Key != HeaderReplayed && h.Key != HeaderReplayedFrom && h.Key != HeaderReplayedAt {
			hs = append(hs, h)
		}
	}
	hs = append(hs,
		kafka.Header{Key: HeaderReplayed, Value: []byte("true")},
		kafka.Header{Key: HeaderReplayedFrom, Value: []byte(kafkabus.Describe(m))},
		kafka.Header{Key: HeaderReplayedAt, Value: []byte(r.o.Now().UTC().Format(time.RFC3339))},
	)
	value := m.Value
	if r.o.Reattribute && EventKind(m) == "log" {
		value = withoutOwner(value)
	}
	return kafka.Message{Topic: target, Key: m.Key, Value: value, Headers: hs}
}

// withoutOwner removes a call log's "owner" (the writer resolves a missing owner from
// the agent with the current mappings); a value that is not a JSON object is kept.
func withoutOwner(v []byte) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil {
		return v
	}
	if _, ok := obj["owner"]; !ok {
		return v
	}
	delete(obj, "owner")
	out, err := json.Marshal(obj)
	if err != nil {
		return v
	}
	return out
}

// flush hands the pending messages to a background job and returns while it runs, so
// the next batch is read meanwhile. A batch's traces are written while the batch before
// it is published; batches are published one at a time, in the order read (a call's
// events keep their order). The trace says "replayed" before its batch is published, so
// that it reads in order when the writer picks the call up at once.
func (r *run) flush(ctx context.Context) error {
	if len(r.pending) == 0 {
		return nil
	}
	if len(r.inflight) == 2 {
		if err := r.waitOldest(); err != nil {
			return err
		}
	}
	batch := r.pending
	r.pending, r.pendingBytes = make([]kafka.Message, 0, r.batch), 0
	var prev *batchJob
	if len(r.inflight) > 0 {
		prev = r.inflight[len(r.inflight)-1]
	}
	j := &batchJob{n: len(batch), published: make(chan struct{})}
	r.inflight = append(r.inflight, j)
	go func() {
		defer close(j.published)
		// Not cancelled by an interrupt half-way: what is in flight is finished.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		r.traceBatch(pctx, batch)
		if prev != nil {
			<-prev.published
			if prev.err != nil {
				j.err = errors.New("an earlier batch failed")
				return
			}
		}
		j.err = r.o.Publisher.Publish(pctx, batch...)
	}()
	return nil
}

// waitOldest waits for the oldest batch in flight and counts it.
func (r *run) waitOldest() error {
	j := r.inflight[0]
	r.inflight = r.inflight[1:]
	<-j.published
	if j.err != nil {
		return j.err
	}
	r.sum.Replayed += j.n
	r.prog.Sent += int64(j.n)
	return nil
}

// wait waits for every batch in flight; the first error is returned.
func (r *run) wait() error {
	var first error
	for len(r.inflight) > 0 {
		if err := r.waitOldest(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// traceBatch records a "replayed" stage on the trace of every call in batch, in one
// Redis pipeline; traces that cannot be written do not stop the replay.
func (r *run) traceBatch(ctx context.Context, batch []kafka.Message) {
	if r.o.Trace == nil {
		return
	}
	entries := make([]trace.CallUpdate, 0, len(batch))
	for _, m := range batch {
		tenant, callID := kafkabus.Header(m, kafkabus.HeaderTenant), kafkabus.Header(m, kafkabus.HeaderCallID)
		if tenant == "" || callID == "" {
			continue
		}
		entries = append(entries, trace.CallUpdate{Tenant: tenant, CallID: callID, Update: trace.Update{Stage: trace.Stage{
			Stage: "replayed", Kind: EventKind(m), Detail: "from " + kafkabus.Header(m, HeaderReplayedFrom) + " to " + m.Topic}}})
	}
	_ = r.o.Trace.RecordAll(ctx, entries)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Print writes the summary: source and window, counts by tenant, type, reason and
// target, and the last line `replayed N messages` (`would replay N messages`).
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "%s, %s: read %d messages, %d matched\n", s.Topic, s.Window, s.Read, s.Matched)
	PrintCounts(w, "by tenant", s.ByTenant)
	PrintCounts(w, "by type", s.ByType)
	PrintCounts(w, "by reason", s.ByReason)
	PrintCounts(w, "to topic", s.ByTarget)
	PrintCounts(w, "skipped", s.Skipped)
	if s.Reattributed > 0 {
		fmt.Fprintf(w, "owner dropped from %d call logs: the writer attributes them with the current mappings\n", s.Reattributed)
	}
	if s.DryRun {
		fmt.Fprintf(w, "would replay %d messages\n", s.Replayed)
		return
	}
	fmt.Fprintf(w, "replayed %d messages\n", s.Replayed)
}

// PrintCounts prints a titled table of counts, largest first (then by name), aligned;
// nothing when there are none.
func PrintCounts(w io.Writer, title string, counts map[string]int) {
	if len(counts) == 0 {
		return
	}
	keys := slices.Collect(maps.Keys(counts))
	slices.SortFunc(keys, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		if a < b {
			return -1
		}
		return 1
	})
	width := 0
	for _, k := range keys {
		width = max(width, len(k))
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-*s %s\n", width, k, strconv.Itoa(counts[k]))
	}
}
