// Package dlq lets an on-call engineer read the dead-letter topic: a summary (counts by
// tenant, reason, type, age, and the commonest errors) and the messages themselves with
// their headers, phone numbers redacted. It selects messages as `calltrack replay` does
// (replay.Window and replay.Filter), so what `dlq show` lists is what a replay with the
// same flags re-drives.
package dlq

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/replay"
)

// Options select the messages to read.
type Options struct {
	Kafka  *kafkabus.Client
	Topics kafkabus.Topics
	Topic  string // default: the DLQ; a kind (dlq, retry, ...) or a topic name
	Window replay.Window
	Filter replay.Filter
	Now    func() time.Time
}

func (o *Options) defaults() {
	if o.Topic == "" {
		o.Topic = o.Topics.DLQ
	}
	o.Topic = replay.Resolve(o.Topic, o.Topics)
	if o.Now == nil {
		o.Now = time.Now
	}
}

// each calls fn with every message of the window that passes the filter.
func (o Options) each(ctx context.Context, fn func(kafka.Message)) error {
	scan, err := replay.Plan(ctx, o.Kafka, o.Topic, o.Window)
	if err != nil {
		return err
	}
	return scan.Each(ctx, func(m kafka.Message) error {
		if o.Window.Contains(m) && o.Filter.Match(m) {
			fn(m)
		}
		return nil
	})
}

// Age buckets of the summary, youngest first.
var ageBuckets = []struct {
	label string
	upTo  time.Duration
}{
	{"< 1h", time.Hour},
	{"1h-6h", 6 * time.Hour},
	{"6h-24h", 24 * time.Hour},
	{"1d-7d", 7 * 24 * time.Hour},
	{"> 7d", 1<<63 - 1},
}

// AgeBucket names the age bucket of a message published at t.
func AgeBucket(now, t time.Time) string {
	age := now.Sub(t)
	for _, b := range ageBuckets {
		if age < b.upTo {
			return b.label
		}
	}
	return ageBuckets[len(ageBuckets)-1].label
}

// Summary counts the dead-lettered messages.
type Summary struct {
	Topic          string
	Total          int
	Oldest, Newest time.Time
	ByTenant       map[string]int
	ByReason       map[string]int
	ByType         map[string]int
	ByAge          map[string]int
	Errors         map[string]int // error header, shortened
	now            time.Time
}

// Summarize reads the window and counts what is in it.
func Summarize(ctx context.Context, o Options) (Summary, error) {
	o.defaults()
	s := Summary{Topic: o.Topic, ByTenant: map[string]int{}, ByReason: map[string]int{}, ByType: map[string]int{},
		ByAge: map[string]int{}, Errors: map[string]int{}, now: o.Now()}
	err := o.each(ctx, func(m kafka.Message) {
		s.Total++
		if s.Oldest.IsZero() || m.Time.Before(s.Oldest) {
			s.Oldest = m.Time
		}
		if m.Time.After(s.Newest) {
			s.Newest = m.Time
		}
		s.ByTenant[orNone(replay.Tenant(m))]++
		s.ByReason[orNone(kafkabus.Header(m, kafkabus.HeaderReason))]++
		s.ByType[orNone(replay.EventKind(m))]++
		s.ByAge[AgeBucket(s.now, m.Time)]++
		if e := kafkabus.Header(m, kafkabus.HeaderError); e != "" {
			s.Errors[shorten(e, 100)]++
		}
	})
	return s, err
}

// Print writes the summary as an on-call engineer reads it.
func (s Summary) Print(w io.Writer) {
	if s.Total == 0 {
		fmt.Fprintf(w, "%s: no messages\n", s.Topic)
		return
	}
	fmt.Fprintf(w, "%s: %d messages, oldest %s (%s ago), newest %s (%s ago)\n", s.Topic, s.Total,
		s.Oldest.UTC().Format(time.RFC3339), ago(s.now, s.Oldest), s.Newest.UTC().Format(time.RFC3339), ago(s.now, s.Newest))
	replay.PrintCounts(w, "by tenant", s.ByTenant)
	replay.PrintCounts(w, "by reason", s.ByReason)
	replay.PrintCounts(w, "by type", s.ByType)
	// Ages in their own order, youngest first.
	fmt.Fprintln(w, "by age:")
	for _, b := range ageBuckets {
		if n := s.ByAge[b.label]; n > 0 {
			fmt.Fprintf(w, "  %-6s %d\n", b.label, n)
		}
	}
	top := s.Errors
	if len(top) > 5 {
		keys := make([]string, 0, len(top))
		for k := range top {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return top[b] - top[a] })
		top = map[string]int{}
		for _, k := range keys[:5] {
			top[k] = s.Errors[k]
		}
	}
	replay.PrintCounts(w, "top errors", top)
}

// ShowOptions select and format the messages to show.
type ShowOptions struct {
	Options
	Limit  int  // the newest Limit matching messages (default 20)
	Unmask bool // show phone numbers as they are
	JSON   bool // one JSON object per line instead of text
}

// Message is one message as `dlq show --json` prints it.
type Message struct {
	Topic     string            `json:"topic"`
	Partition int               `json:"partition"`
	Offset    int64             `json:"offset"`
	Time      time.Time         `json:"time"`
	Key       string            `json:"key"`
	Headers   map[string]string `json:"headers"`
	Value     json.RawMessage   `json:"value,omitempty"`
	Text      string            `json:"text,omitempty"` // a value that is not JSON
}

// Show prints the newest matching messages, oldest of them first, and returns how many
// matched in all.
func Show(ctx context.Context, o ShowOptions, out io.Writer) (int, error) {
	o.defaults()
	if o.Limit <= 0 {
		o.Limit = 20
	}
	newest := &byTime{}
	matched := 0
	err := o.each(ctx, func(m kafka.Message) {
		matched++
		heap.Push(newest, m)
		if newest.Len() > o.Limit {
			heap.Pop(newest) // the oldest
		}
	})
	if err != nil {
		return matched, err
	}
	msgs := slices.Clone(*newest)
	slices.SortFunc(msgs, func(a, b kafka.Message) int { return a.Time.Compare(b.Time) })
	now := o.Now()
	for _, m := range msgs {
		v := m.Value
		if !o.Unmask {
			v = Redact(v)
		}
		msg := Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Time: m.Time.UTC(), Key: string(m.Key), Headers: map[string]string{}}
		for _, h := range m.Headers {
			msg.Headers[h.Key] = string(h.Value)
		}
		if json.Valid(v) {
			msg.Value = v
		} else {
			msg.Text = string(v)
		}
		if o.JSON {
			b, _ := json.Marshal(msg)
			fmt.Fprintf(out, "%s\n", b)
			continue
		}
		printText(out, now, m, msg)
	}
	if !o.JSON {
		fmt.Fprintf(out, "showing %d of %d matching messages", len(msgs), matched)
		if matched > len(msgs) {
			fmt.Fprintf(out, " (the newest; raise --limit or narrow with --since, --tenant, --call-id)")
		}
		fmt.Fprintln(out)
	}
	return matched, nil
}

// printText prints one message: where and when, the headers that matter first, then the
// others, then the payload (indented JSON).
func printText(out io.Writer, now time.Time, m kafka.Message, msg Message) {
	fmt.Fprintf(out, "%s  %s (%s ago)  key %s\n", kafkabus.Describe(m), msg.Time.Format(time.RFC3339), ago(now, m.Time), msg.Key)
	first := []string{kafkabus.HeaderTenant, kafkabus.HeaderCallID, kafkabus.HeaderReason, kafkabus.HeaderError, kafkabus.HeaderStatus,
		kafkabus.HeaderAttempts, kafkabus.HeaderOrigTopic, kafkabus.HeaderOrigPart, kafkabus.HeaderOrigOff}
	for _, k := range first {
		if v, ok := msg.Headers[k]; ok {
			fmt.Fprintf(out, "  %-20s %s\n", k+":", v)
		}
	}
	rest := make([]string, 0, len(msg.Headers))
	for k := range msg.Headers {
		if !slices.Contains(first, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		fmt.Fprintf(out, "  %-20s %s\n", k+":", msg.Headers[k])
	}
	if msg.Value != nil {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetIndent("    ", "  ")
		var v any
		if json.Unmarshal(msg.Value, &v) == nil && enc.Encode(v) == nil {
			fmt.Fprintf(out, "  payload:\n    %s", b.String())
		} else {
			fmt.Fprintf(out, "  payload: %s\n", msg.Value)
		}
	} else {
		fmt.Fprintf(out, "  payload (text): %s\n", msg.Text)
	}
	fmt.Fprintln(out)
}

// byTime is a min-heap of messages by timestamp: popping drops the oldest.
type byTime []kafka.Message

func (h byTime) Len() int           { return len(h) }
func (h byTime) Less(i, j int) bool { return h[i].Time.Before(h[j].Time) }
func (h byTime) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byTime) Push(x any)        { *h = append(*h, x.(kafka.Message)) }
func (h *byTime) Pop() any {
	old := *h
	m := old[len(old)-1]
	*h = old[:len(old)-1]
	return m
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// ago is a short, human duration: 45s, 12m, 3h, 2d.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
