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
type batcher struct {
	linger time.Duration
	max    int
	send   func(ctx context.Context, recs []json.RawMessage) []outcome

	mu  sync.Mutex
	cur *batch
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
	bt := b.cur
	if bt == nil {
		bt = &batch{}
		b.cur = bt
		bt.timer = time.AfterFunc(b.linger, func() { b.flush(bt) })
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
	for i, o := range b.send(crm.WithoutRequestCount(context.WithoutCancel(live[0].ctx)), recs) {
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
