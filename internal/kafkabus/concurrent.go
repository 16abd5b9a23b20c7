package kafkabus

import (
	"container/heap"
	"context"
	"errors"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// ConcurrentConfig configures a consumer that handles messages concurrently while
// keeping what must stay in order in order:
//   - messages are grouped by GroupOf (the tenant): each group has its own lanes and
//     queue, so one group's slow or failing work never holds up another's;
//   - within a group, messages with the same key go to the same lane, in order (one
//     call's events are never handled concurrently);
//   - offsets are committed only up to the first message not yet handled, per
//     partition, so nothing unhandled is ever committed past.
type ConcurrentConfig struct {
	ConsumerConfig
	GroupOf   func(kafka.Message) string    // isolation unit; "" for all
	Lanes     int                           // lanes per group; default 8
	QueueSize int                           // messages queued per lane; default 64
	DueAt     func(kafka.Message) time.Time // when set, a message is held until then (retry topics)
	MaxHeld   int                           // most messages held for DueAt at once; default 100000
	// Overflow handles a message whose lane queue is full instead of blocking the fetch
	// loop (and so every other group). nil: block.
	Overflow Handler
	// CommitEvery is how often handled offsets are committed; default 200ms.
	CommitEvery time.Duration
}

func (c *ConcurrentConfig) defaults() {
	if c.Lanes <= 0 {
		c.Lanes = 8
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 64
	}
	if c.MaxHeld <= 0 {
		c.MaxHeld = 100000
	}
	if c.CommitEvery <= 0 {
		c.CommitEvery = 200 * time.Millisecond
	}
	if c.HandleTimeout <= 0 {
		c.HandleTimeout = 60 * time.Second
	}
	if c.GroupOf == nil {
		c.GroupOf = func(kafka.Message) string { return "" }
	}
}

// ConsumeConcurrent runs the consumer until ctx ends, then stops fetching, lets the
// lanes finish the message each is on, commits what was handled and leaves the group.
func ConsumeConcurrent(ctx context.Context, c *Client, cfg ConcurrentConfig, h Handler) error {
	if cfg.GroupID == "" || len(cfg.Topics) == 0 {
		return errors.New("kafka: consumer needs a group id and topics")
	}
	cfg.defaults()
	r := newGroupReader(c, cfg.ConsumerConfig)
	cons := &concurrent{cfg: cfg, h: h, r: r, tracker: newTracker(), groups: map[string]*laneGroup{}, ctx: ctx}

	stopCommit := make(chan struct{})
	commitDone := make(chan struct{})
	go func() { defer close(commitDone); cons.committer(stopCommit) }()

	var held *holder
	heldDone := make(chan struct{})
	if cfg.DueAt != nil {
		held = newHolder(cfg.MaxHeld)
		go func() { defer close(heldDone); held.run(ctx, cons.dispatch) }()
	} else {
		close(heldDone)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			cfg.Log.Warn().Err(err).Str("group", cfg.GroupID).Msg("kafka fetch failed")
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		cons.tracker.add(m)
		if held != nil {
			if due := cfg.DueAt(m); time.Until(due) > 0 {
				if !held.hold(ctx, m, due) {
					break
				}
				continue
			}
		}
		if !cons.dispatch(m) {
			break
		}
	}
	// The holder dispatches too: it must be done before the lanes close.
	<-heldDone
	cons.closeLanes()
	close(stopCommit)
	<-commitDone
	if err := r.Close(); err != nil {
		cfg.Log.Warn().Err(err).Msg("kafka reader close")
	}
	return nil
}

type job struct{ m kafka.Message }

type laneGroup struct{ lanes []chan job }

type concurrent struct {
	cfg     ConcurrentConfig
	h       Handler
	r       *kafka.Reader
	tracker *tracker
	ctx     context.Context

	mu     sync.Mutex
	groups map[string]*laneGroup
	wg     sync.WaitGroup
	closed bool
}

// dispatch queues m on its lane; false when shutting down.
func (c *concurrent) dispatch(m kafka.Message) bool {
	lane := c.lane(m)
	if lane == nil {
		return false
	}
	select {
	case lane <- job{m}:
		return true
	default:
	}
	if c.cfg.Overflow != nil {
		// The group is saturated: hand the message on rather than stall other groups.
		if handleUntilRouted(c.ctx, c.cfg.ConsumerConfig, c.cfg.Overflow, m) {
			c.tracker.done(m)
			return true
		}
		return false
	}
	select {
	case lane <- job{m}:
		return true
	case <-c.ctx.Done():
		return false
	}
}

func (c *concurrent) lane(m kafka.Message) chan job {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	name := c.cfg.GroupOf(m)
	g, ok := c.groups[name]
	if !ok {
		g = &laneGroup{lanes: make([]chan job, c.cfg.Lanes)}
		for i := range g.lanes {
			ch := make(chan job, c.cfg.QueueSize)
			g.lanes[i] = ch
			c.wg.Add(1)
			go c.work(ch)
		}
		c.groups[name] = g
	}
	f := fnv.New32a()
	_, _ = f.Write(m.Key)
	return g.lanes[int(f.Sum32()%uint32(len(g.lanes)))]
}

func (c *concurrent) work(ch chan job) {
	defer c.wg.Done()
	for j := range ch {
		if c.ctx.Err() != nil {
			continue // shutting down: leave it uncommitted for the next owner
		}
		if handleUntilRouted(c.ctx, c.cfg.ConsumerConfig, c.h, j.m) {
			c.tracker.done(j.m)
		}
	}
}

func (c *concurrent) closeLanes() {
	c.mu.Lock()
	c.closed = true
	for _, g := range c.groups {
		for _, ch := range g.lanes {
			close(ch)
		}
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// committer commits the handled prefix of each partition periodically, and once more
// when stopped.
func (c *concurrent) committer(stop chan struct{}) {
	t := time.NewTicker(c.cfg.CommitEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.commit()
		case <-stop:
			c.commit()
			return
		}
	}
}

func (c *concurrent) commit() {
	msgs := c.tracker.take()
	if len(msgs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		// After a rebalance the partition's new owner redelivers; handlers are idempotent.
		c.cfg.Log.Warn().Err(err).Int("messages", len(msgs)).Msg("kafka commit failed")
	}
}

// tracker follows, per partition, which fetched offsets are handled, and yields the
// last message of each partition's handled prefix.
type tracker struct {
	mu    sync.Mutex
	parts map[tp]*ptrack
}

type tp struct {
	topic     string
	partition int
}

type ptrack struct {
	inflight  []int64 // sorted
	done      map[int64]int
	msgs      map[int64]kafka.Message
	candidate *kafka.Message
}

func newTracker() *tracker { return &tracker{parts: map[tp]*ptrack{}} }

func (t *tracker) add(m kafka.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tp{m.Topic, m.Partition}
	p, ok := t.parts[k]
	if !ok {
		p = &ptrack{done: map[int64]int{}, msgs: map[int64]kafka.Message{}}
		t.parts[k] = p
	}
	i := sort.Search(len(p.inflight), func(i int) bool { return p.inflight[i] > m.Offset })
	p.inflight = append(p.inflight, 0)
	copy(p.inflight[i+1:], p.inflight[i:])
	p.inflight[i] = m.Offset
	p.msgs[m.Offset] = m
}

func (t *tracker) done(m kafka.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[tp{m.Topic, m.Partition}]
	if p == nil {
		return
	}
	p.done[m.Offset]++
	for len(p.inflight) > 0 && p.done[p.inflight[0]] > 0 {
		off := p.inflight[0]
		p.inflight = p.inflight[1:]
		p.done[off]--
		if p.done[off] == 0 {
			delete(p.done, off)
		}
		msg := p.msgs[off]
		p.candidate = &msg
		if !containsOffset(p.inflight, off) {
			delete(p.msgs, off)
		}
	}
}

func containsOffset(s []int64, off int64) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i] >= off })
	return i < len(s) && s[i] == off
}

// take returns the messages to commit (one per partition) and forgets them.
func (t *tracker) take() []kafka.Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []kafka.Message
	for _, p := range t.parts {
		if p.candidate != nil {
			out = append(out, *p.candidate)
			p.candidate = nil
		}
	}
	return out
}

// holder keeps messages that are not due yet, in due order, and dispatches them when due.
type holder struct {
	mu    sync.Mutex
	h     dueHeap
	max   int
	wake  chan struct{}
	space chan struct{}
}

func newHolder(max int) *holder {
	return &holder{max: max, wake: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

type dueItem struct {
	due time.Time
	m   kafka.Message
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// hold adds m; it blocks while the holder is full. False when ctx ends.
func (h *holder) hold(ctx context.Context, m kafka.Message, due time.Time) bool {
	for {
		h.mu.Lock()
		if len(h.h) < h.max {
			heap.Push(&h.h, dueItem{due, m})
			h.mu.Unlock()
			select {
			case h.wake <- struct{}{}:
			default:
			}
			return true
		}
		h.mu.Unlock()
		select {
		case <-h.space:
		case <-ctx.Done():
			return false
		}
	}
}

func (h *holder) run(ctx context.Context, dispatch func(kafka.Message) bool) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		h.mu.Lock()
		wait := time.Hour
		var ready []kafka.Message
		for len(h.h) > 0 {
			if d := time.Until(h.h[0].due); d > 0 {
				wait = d
				break
			}
			ready = append(ready, heap.Pop(&h.h).(dueItem).m)
		}
		h.mu.Unlock()
		if len(ready) > 0 {
			select {
			case h.space <- struct{}{}:
			default:
			}
		}
		for _, m := range ready {
			if !dispatch(m) {
				return
			}
		}
		if len(ready) > 0 {
			continue
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-t.C:
		}
	}
}
