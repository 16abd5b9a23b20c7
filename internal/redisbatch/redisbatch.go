// Package redisbatch sends many callers' Redis commands in one pipeline: every caller's
// queued since the last write, one batch at a time. Redis then reads and answers one
// pipeline for many callers, and each side makes one read and one write for the lot.
//
// Add is for commands whose answers nobody waits for — ingest's dedupe finish and
// trace stages, once a webhook's events are on Kafka: the webhook's answer waits for
// one Redis round trip, not two (serve's maximum rose by a sixth, BENCHMARKS.md
// section 1, sixth round). Do is for commands whose answers the caller reads — a
// webhook's claim and owner lookups: it waits for its batch (ninth round).
package redisbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/redisscript"
)

// Defaults of Options.
const (
	DefaultMaxQueued = 10_000
	DefaultTimeout   = 2 * time.Second
)

// Options tune a Batcher.
type Options struct {
	// MaxQueued bounds the callers' writes waiting (DefaultMaxQueued when zero): past
	// it, Add refuses and the caller writes itself, so a slow Redis slows callers
	// rather than growing the queue without bound.
	MaxQueued int
	// Timeout bounds one pipeline's write (DefaultTimeout when zero).
	Timeout time.Duration
	// Finish, when set, adds commands after a batch's writes, in its pipeline and on
	// the Batcher's goroutine as the writes' own: for what many writes merge into one
	// command (ingest's trace index entries: trace.IndexBatch).
	Finish func(redis.Pipeliner)
	// Failed is told of a write that failed (its commands are not retried: what is
	// batched here must be safe to lose, as a trace stage is).
	Failed func(err error, commands int)
}

// Batcher queues writes and sends them in one pipeline per batch, one batch at a time.
type Batcher struct {
	rdb  redis.UniversalClient
	opts Options

	mu      sync.Mutex
	queue   []func(redis.Pipeliner)
	added   uint64        // writes ever queued
	written uint64        // writes sent (answered or failed): the first `written` of `added`
	done    chan struct{} // closed when a batch is sent; replaced for the next
	closed  bool

	wake chan struct{}
	stop chan struct{}
	exit chan struct{}
}

// New starts a Batcher writing to rdb; Close stops it.
func New(rdb redis.UniversalClient, opts Options) *Batcher {
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = DefaultMaxQueued
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	b := &Batcher{rdb: rdb, opts: opts, done: make(chan struct{}), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), exit: make(chan struct{})}
	go b.run()
	return b
}

// Add queues fn, which adds its commands to the batch's pipeline; their answers are
// not read. The pipeline goes by redisscript.Independent: fn's commands must not
// depend on each other's order, nor on other callers'. Add reports false, queuing
// nothing, when the queue is full or the Batcher closed.
func (b *Batcher) Add(fn func(redis.Pipeliner)) bool {
	b.mu.Lock()
	if b.closed || len(b.queue) >= b.opts.MaxQueued {
		b.mu.Unlock()
		return false
	}
	b.queue = append(b.queue, fn)
	b.added++
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // a wake-up is due already
	}
	return true
}

// ErrNotQueued is Do's error when the queue is full or the Batcher closed: the
// caller sends its commands itself.
var ErrNotQueued = errors.New("redisbatch: not queued: the queue is full or closed")

// Do queues fn, as Add, and waits until its batch was sent and answered (or failed):
// then fn's commands hold their answers. It returns ErrNotQueued when Add would
// refuse, and ctx's error when ctx ends first — fn may then still run, later: it must
// not write what its caller reads after an error.
func (b *Batcher) Do(ctx context.Context, fn func(redis.Pipeliner)) error {
	if !b.Add(fn) {
		return ErrNotQueued
	}
	return b.Flush(ctx)
}

// Flush waits until every write queued before it was sent (and answered, or failed),
// or ctx ends: for a reader that must see them.
func (b *Batcher) Flush(ctx context.Context) error {
	b.mu.Lock()
	want := b.added
	for b.written < want {
		done := b.done
		b.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.exit:
			return nil // closed: nothing more will be sent
		}
		b.mu.Lock()
	}
	b.mu.Unlock()
	return nil
}

// Close sends what is queued (within ctx) and stops; later Adds are refused.
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	err := b.Flush(ctx)
	close(b.stop)
	<-b.exit
	return err
}

func (b *Batcher) run() {
	defer close(b.exit)
	for {
		select {
		case <-b.wake:
		case <-b.stop:
			return
		}
		b.send()
	}
}

// send writes what is queued, in one pipeline.
func (b *Batcher) send() {
	b.mu.Lock()
	fns := b.queue
	b.queue = nil
	b.mu.Unlock()
	if len(fns) == 0 {
		return
	}
	p := b.rdb.Pipeline()
	for _, fn := range fns {
		b.add(p, fn)
	}
	if b.opts.Finish != nil {
		b.add(p, b.opts.Finish)
	}
	n := p.Len()
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
	cmds, err := p.Exec(redisscript.Independent(ctx))
	cancel()
	if errors.Is(err, redis.Nil) {
		err = failure(cmds) // Exec reports the first command's error: a lookup that found nothing is not one
	}
	if err != nil && b.opts.Failed != nil {
		b.opts.Failed(err, n)
	}
	b.mu.Lock()
	b.written += uint64(len(fns))
	close(b.done)
	b.done = make(chan struct{})
	b.mu.Unlock()
}

// failure is the first error of cmds that is not a reply of nothing (redis.Nil).
func failure(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

// add runs fn on p; a panic there is reported as a failed write, not a crash of the
// process (in a caller's own goroutine its server's recovery would have caught it).
func (b *Batcher) add(p redis.Pipeliner, fn func(redis.Pipeliner)) {
	defer func() {
		if r := recover(); r != nil && b.opts.Failed != nil {
			b.opts.Failed(fmt.Errorf("redisbatch: a write's commands panicked: %v", r), 0)
		}
	}()
	fn(p)
}
