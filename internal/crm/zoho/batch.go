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
	done chan outcome // buffered: the sender never blocks on a caller that left
}

// add queues rec and waits for its result or for ctx to end. A caller that leaves
// before its batch is sent is left out of it; one that leaves after cannot know
// whether its record was written (as with any request in flight).
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
		return "", &crm.Error{Op: "zoho: create call", Message: "waiting for the batched insert", Err: ctx.Err()}
	}
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

// run sends the records of the callers still waiting. The request is no one
// caller's: it carries the first caller's context values but lives until every
// waiting caller has given up (or it is answered).
func (b *batcher) run(bt *batch) {
	var live []*item
	for _, it := range bt.items {
		if it.ctx.Err() == nil {
			live = append(live, it)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(live[0].ctx))
	defer cancel()
	var mu sync.Mutex
	waiting := len(live)
	for _, it := range live {
		stop := context.AfterFunc(it.ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if waiting--; waiting == 0 {
				cancel()
			}
		})
		defer stop()
	}
	recs := make([]json.RawMessage, len(live))
	for i, it := range live {
		recs[i] = it.rec
	}
	for i, o := range b.send(ctx, recs) {
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
