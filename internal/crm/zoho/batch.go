package zoho

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/calltrack/calltrack/internal/crm"
)

// batcher gathers concurrent inserts into one request: the first record starts a
// batch and a linger timer; the batch goes when the timer fires or when it is full.
// Each caller waits for its own record's result.
//
// The linger adapts to the insert rate (Zoho's request budget, issue 12: ≤ 0.2
// requests per call at steady state). A batch whose first record finds inserts
// arriving steadily — the recent gap between them (an average) under maxLinger —
// waits long enough to gather batchTarget records at that rate, between linger and
// maxLinger; an isolated insert, or a burst that fills a batch within linger, waits
// linger as before. An insert arriving within closedLoopGap of a batch's answer is
// most likely the next insert of a caller that waited for that answer (a writer
// lane, a test looping over creates): its gap measures our own latency, not the
// traffic, so it is not counted — else a lone sequential caller would make the
// batcher wait longer and longer for batch-mates that never come.
type batcher struct {
	linger    time.Duration
	maxLinger time.Duration // ≤ linger: no adaptation
	max       int
	send      func(ctx context.Context, recs []json.RawMessage) []outcome

	mu       sync.Mutex
	cur      *batch
	last     time.Time     // the last insert's arrival
	answered time.Time     // when the last batch's answer came
	gap      time.Duration // average gap between inserts, halfway to each new one (0: none seen yet)
}

// batchTarget is the batch size the adaptive linger aims at: 8 records a request
// is 0.125 requests per call, under the 0.2 budget with room for the lookups and
// token refreshes of a steady state.
const batchTarget = 8

// closedLoopGap: an insert this soon after a batch's answer is not counted in the
// insert rate (see batcher).
const closedLoopGap = 50 * time.Millisecond

// observe counts an insert arriving at now in the average gap. Callers hold b.mu.
func (b *batcher) observe(now time.Time) {
	defer func() { b.last = now }()
	if b.last.IsZero() || (!b.answered.IsZero() && now.Sub(b.answered) < closedLoopGap && b.answered.After(b.last)) {
		return
	}
	idle := 4 * b.maxLinger
	g := min(now.Sub(b.last), idle) // one long pause marks the traffic idle, not forever
	if b.gap == 0 {
		b.gap = idle // from idle: one short gap alone is not yet a rate
	}
	b.gap += (g - b.gap) / 2
}

// wait is how long a batch opened now lingers. Callers hold b.mu.
func (b *batcher) wait() time.Duration {
	if b.maxLinger <= b.linger || b.gap == 0 || b.gap >= b.maxLinger {
		return b.linger // no adaptation, or too few inserts for a batch-mate to come in time
	}
	return min(max(time.Duration(batchTarget-1)*b.gap, b.linger), b.maxLinger)
}

type batch struct {
	items []*item
	timer *time.Timer
}

type item struct {
	ctx  context.Context
	rec  json.RawMessage
	done chan outcome // buffered: the sender never blocks on a caller

	mu    sync.Mutex
	left  bool // the caller's ctx ended while it waited
	taken bool // run put the record into a request
}

// add queues rec and waits for its result. A caller whose ctx ends before its batch
// is sent is left out of it. Once the batch is sent, the caller waits for the answer
// whatever its ctx says (the request is bounded by the HTTP client's timeout): an
// insert that went out has an outcome, and giving up on it would turn a written record
// into a failure that invites a second create. Only the request's own failure (no
// answer) is reported as an unknown outcome (crm.ErrOutcomeUnknown).
func (b *batcher) add(ctx context.Context, rec json.RawMessage) (string, error) {
	it := &item{ctx: ctx, rec: rec, done: make(chan outcome, 1)}
	b.mu.Lock()
	b.observe(time.Now())
	bt := b.cur
	if bt == nil {
		bt = &batch{}
		b.cur = bt
		bt.timer = time.AfterFunc(b.wait(), func() { b.flush(bt) })
	}
	bt.items = append(bt.items, it)
	full := len(bt.items) >= b.max
	if full {
		b.cur = nil // the timer's flush finds the batch taken and does nothing
		bt.timer.Stop()
	}
	b.mu.Unlock()
	if full {
		go b.run(bt)
	}
	select {
	case o := <-it.done:
		return o.get()
	case <-ctx.Done():
	}
	// The caller gave up: if its record was taken into a request, await that
	// request's end; else the record was never sent and the failure is clean.
	it.mu.Lock()
	it.left = true
	taken := it.taken
	it.mu.Unlock()
	if !taken {
		return "", &crm.Error{Op: "zoho: create call", Message: "waiting for the batched insert", Err: ctx.Err()}
	}
	return (<-it.done).get()
}

// flush sends bt when its linger is over, unless it was sent for being full.
func (b *batcher) flush(bt *batch) {
	b.mu.Lock()
	if b.cur != bt {
		b.mu.Unlock()
		return
	}
	b.cur = nil
	b.mu.Unlock()
	b.run(bt)
}

// run sends the records of the callers still waiting, and delivers each its
// record's outcome. The request is no one caller's: it carries the first caller's
// context values but no caller's cancellation, and always runs to its end.
func (b *batcher) run(bt *batch) {
	var live []*item
	for _, it := range bt.items {
		it.mu.Lock()
		if !it.left && it.ctx.Err() == nil {
			it.taken = true
			live = append(live, it)
		}
		it.mu.Unlock()
	}
	if len(live) == 0 {
		return
	}
	recs := make([]json.RawMessage, len(live))
	for i, it := range live {
		recs[i] = it.rec
	}
	// The request counts a share to each call it carries.
	for _, it := range live {
		crm.CountRequest(it.ctx, 1/float64(len(live)))
	}
	out := b.send(crm.WithoutRequestCount(context.WithoutCancel(live[0].ctx)), recs)
	b.mu.Lock()
	b.answered = time.Now()
	b.mu.Unlock()
	for i, o := range out {
		live[i].done <- o
	}
}

// insert sends one POST /crm/v8/Calls with recs and returns one outcome per record.
func (a *Adapter) insert(ctx context.Context, recs []json.RawMessage) []outcome {
	const op = "zoho: create call"
	r, err := a.sendJSON(ctx, op, http.MethodPost, "/crm/v8/Calls", map[string]any{"data": recs})
	if err != nil {
		out := make([]outcome, len(recs))
		for i := range out {
			out[i].err = err
		}
		return out
	}
	return results(op, r, len(recs))
}
