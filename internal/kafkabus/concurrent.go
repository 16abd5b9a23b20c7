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
	"golang.org/x/sync/semaphore"
)

// ConcurrentConfig configures a consumer that handles messages concurrently while
// keeping what must stay in order in order:
//   - messages are grouped by GroupOf (the tenant): each group has its own lanes and
//     queue, so one group's slow or failing work never holds up another's;
//   - within a group, messages with the same key go to the same lane, in order (one
//     call's events are never handled concurrently);
//   - offsets are committed only up to the first message not yet handled, per
//     partition, so nothing unhandled is ever committed past;
//   - the messages it tracks (fetched, not yet committed) are bounded in bytes: at the
//     bound it stops fetching until commits catch up;
//   - the partitions of a consumer-group generation are worked on only while it lasts:
//     when a rebalance ends it, fetching stops, queued messages are dropped (the
//     partitions' next owner gets them) and handlers still running get RebalanceGrace
//     before their context is cancelled, so no message is handled here and there at once.
type ConcurrentConfig struct {
	ConsumerConfig
	GroupOf   func(kafka.Message) string    // isolation unit; "" for all
	Lanes     int                           // lanes per group; default 8
	QueueSize int                           // messages queued per lane; default 64
	DueAt     func(kafka.Message) time.Time // when set, a message is held until then (retry topics)
	// MaxBytes bounds the bytes of the messages tracked at once (fetched and not yet
	// committed: queued, held, being handled, or handled behind one that is not);
	// default 64 MiB. Each partition reader buffers up to about 1 MiB more.
	MaxBytes int64
	// Overflow handles a message whose lane queue is full instead of blocking the fetch
	// loop (and so every other group). nil: block.
	Overflow Handler
	// CommitEvery is how often handled offsets are committed; default 200ms.
	CommitEvery time.Duration
	// RebalanceGrace is how long handlers of a generation that ended may go on before
	// their context is cancelled; default 5s (well inside the rebalance timeout).
	RebalanceGrace time.Duration
	// OnTracked, when set, is called with the bytes tracked whenever they change
	// (a gauge; tests).
	OnTracked func(bytes int64)
}

func (c *ConcurrentConfig) defaults() {
	if c.Lanes <= 0 {
		c.Lanes = 8
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 64
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.CommitEvery <= 0 {
		c.CommitEvery = 200 * time.Millisecond
	}
	if c.HandleTimeout <= 0 {
		c.HandleTimeout = 60 * time.Second
	}
	if c.RebalanceGrace <= 0 {
		c.RebalanceGrace = 5 * time.Second
	}
	if c.GroupOf == nil {
		c.GroupOf = func(kafka.Message) string { return "" }
	}
}

// Group timing: a member that stops heartbeating for SessionTimeout is dropped; during
// a rebalance members have RebalanceTimeout to rejoin (ours rejoin once their handlers
// stopped, within RebalanceGrace).
const (
	heartbeatInterval = time.Second
	sessionTimeout    = 10 * time.Second
	rebalanceTimeout  = 30 * time.Second
)

// ConsumeConcurrent runs the consumer until ctx ends, then stops fetching, lets the
// handlers finish the message each is on (up to HandleTimeout), commits what was
// handled and leaves the group. It uses kafka-go's ConsumerGroup, whose generations
// show rebalances (its Reader hides them).
func ConsumeConcurrent(ctx context.Context, c *Client, cfg ConcurrentConfig, h Handler) error {
	if cfg.GroupID == "" || len(cfg.Topics) == 0 {
		return errors.New("kafka: consumer needs a group id and topics")
	}
	cfg.defaults()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: cfg.GroupID, Brokers: c.Brokers(), Dialer: c.Dialer(), Topics: cfg.Topics,
		HeartbeatInterval: heartbeatInterval, SessionTimeout: sessionTimeout, RebalanceTimeout: rebalanceTimeout,
		JoinGroupBackoff: 500 * time.Millisecond, WatchPartitionChanges: true, PartitionWatchInterval: 5 * time.Second,
		StartOffset: kafka.FirstOffset, Timeout: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	b := &budget{sem: semaphore.NewWeighted(cfg.MaxBytes), max: cfg.MaxBytes, report: cfg.OnTracked}
	left := make(chan struct{})
	var leaveOnce sync.Once
	leave := func() { leaveOnce.Do(func() { go func() { _ = cg.Close(); close(left) }() }) }
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			cfg.Log.Warn().Err(err).Str("group", cfg.GroupID).Msg("kafka group: joining failed; retrying")
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		done := make(chan struct{})
		gen.Start(func(genCtx context.Context) {
			defer close(done)
			g := &generation{cfg: cfg, c: c, h: h, gen: gen, budget: b, tracker: newTracker(), groups: map[string]*laneGroup{}}
			g.run(ctx, genCtx)
			if ctx.Err() != nil {
				// Leave while this generation still holds the group (its offsets are
				// committed): closing after it ended would rejoin first.
				leave()
				<-genCtx.Done()
			}
		})
		<-done
		if ctx.Err() != nil {
			break
		}
	}
	leave()
	<-left
	return nil
}

// generation is the work on one generation's partitions.
type generation struct {
	cfg     ConcurrentConfig
	c       *Client
	h       Handler
	gen     *kafka.Generation
	budget  *budget
	tracker *tracker

	stop context.Context // ends when fetching must stop (shutdown or generation end)
	work context.Context // of handlers; cancelled after the grace
	held *holder

	mu     sync.Mutex
	groups map[string]*laneGroup
	wg     sync.WaitGroup
	closed bool
}

type laneGroup struct{ lanes []chan kafka.Message }

// run works on the generation until ctx (shutdown) or genCtx (rebalance) ends.
func (g *generation) run(ctx, genCtx context.Context) {
	stop, stopFetching := context.WithCancel(context.Background())
	work, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	g.stop, g.work = stop, work

	// The holder before the fetchers: they read g.held, and one that found it unset
	// would dispatch a message that is not due yet.
	heldDone := make(chan struct{})
	if g.cfg.DueAt != nil {
		g.held = newHolder()
		go func() { defer close(heldDone); g.held.run(stop, g.dispatch) }()
	} else {
		close(heldDone)
	}
	var fetchers sync.WaitGroup
	for topic, parts := range g.gen.Assignments {
		for _, p := range parts {
			fetchers.Add(1)
			go func() { defer fetchers.Done(); g.fetch(topic, p.ID, p.Offset) }()
		}
	}
	commitDone := make(chan struct{})
	go func() { defer close(commitDone); g.committer(stop) }()

	// Until shutdown or the generation's end.
	rebalanced := false
	select {
	case <-ctx.Done():
	case <-genCtx.Done():
		rebalanced = true
	}
	stopFetching()
	grace := g.cfg.HandleTimeout
	if rebalanced {
		// Another member may own these partitions soon: stop rather than finish twice.
		grace = g.cfg.RebalanceGrace
	}
	timer := time.AfterFunc(grace, cancelWork)
	defer timer.Stop()
	fetchers.Wait()
	<-heldDone
	g.closeLanes()
	<-commitDone
	g.commit() // the last handled offsets; accepted while the group is rebalancing
	g.budget.release(g.tracker.drop())
}

// fetch reads one partition from offset and dispatches its messages.
func (g *generation) fetch(topic string, partition int, offset int64) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: g.c.Brokers(), Dialer: g.c.Dialer(), Topic: topic, Partition: partition,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: 64,
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: 500 * time.Millisecond, MaxAttempts: 3,
	})
	defer func() {
		if err := r.Close(); err != nil {
			g.cfg.Log.Debug().Err(err).Msg("kafka partition reader close")
		}
	}()
	if err := r.SetOffset(offset); err != nil {
		g.cfg.Log.Error().Err(err).Str("topic", topic).Int("partition", partition).Msg("kafka: cannot start the partition reader")
		return
	}
	for {
		m, err := r.FetchMessage(g.stop)
		if err != nil {
			if g.stop.Err() != nil {
				return
			}
			g.cfg.Log.Warn().Err(err).Str("topic", topic).Int("partition", partition).Msg("kafka fetch failed")
			if !sleep(g.stop, time.Second) {
				return
			}
			continue
		}
		n := size(m)
		if !g.budget.acquire(g.stop, n) {
			return
		}
		g.tracker.add(m, n)
		if g.held != nil {
			if due := g.cfg.DueAt(m); time.Until(due) > 0 {
				g.held.hold(m, due)
				continue
			}
		}
		if !g.dispatch(m) {
			return
		}
	}
}

// dispatch queues m on its lane; false when stopping.
func (g *generation) dispatch(m kafka.Message) bool {
	lane := g.lane(m)
	if lane == nil {
		return false
	}
	select {
	case lane <- m:
		return true
	default:
	}
	if g.cfg.Overflow != nil {
		// The group is saturated: hand the message on rather than stall other groups.
		if handleUntilRouted(g.stop, g.work, g.cfg.ConsumerConfig, g.cfg.Overflow, m) {
			g.done(m)
			return true
		}
		return false
	}
	select {
	case lane <- m:
		return true
	case <-g.stop.Done():
		return false
	}
}

func (g *generation) lane(m kafka.Message) chan kafka.Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	name := g.cfg.GroupOf(m)
	lg, ok := g.groups[name]
	if !ok {
		lg = &laneGroup{lanes: make([]chan kafka.Message, g.cfg.Lanes)}
		for i := range lg.lanes {
			ch := make(chan kafka.Message, g.cfg.QueueSize)
			lg.lanes[i] = ch
			g.wg.Add(1)
			go g.worker(ch)
		}
		g.groups[name] = lg
	}
	f := fnv.New32a()
	_, _ = f.Write(m.Key)
	return lg.lanes[int(f.Sum32()%uint32(len(lg.lanes)))]
}

func (g *generation) worker(ch chan kafka.Message) {
	defer g.wg.Done()
	for m := range ch {
		if g.stop.Err() != nil {
			continue // stopping: leave it uncommitted for the partition's next owner
		}
		if handleUntilRouted(g.stop, g.work, g.cfg.ConsumerConfig, g.h, m) {
			g.done(m)
		}
	}
}

func (g *generation) done(m kafka.Message) { g.budget.release(g.tracker.done(m)) }

func (g *generation) closeLanes() {
	g.mu.Lock()
	g.closed = true
	for _, lg := range g.groups {
		for _, ch := range lg.lanes {
			close(ch)
		}
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// committer commits the handled prefix of each partition periodically.
func (g *generation) committer(stop context.Context) {
	t := time.NewTicker(g.cfg.CommitEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			g.commit()
		case <-stop.Done():
			return
		}
	}
}

func (g *generation) commit() {
	offsets := g.tracker.take()
	if len(offsets) == 0 {
		return
	}
	if err := g.gen.CommitOffsets(offsets); err != nil {
		// The generation is over: the partitions' next owner redelivers from the last
		// commit, and the handlers are idempotent.
		g.tracker.untake(offsets)
		g.cfg.Log.Warn().Err(err).Str("group", g.cfg.GroupID).Msg("kafka commit failed")
	}
}

// size is what a tracked message counts against MaxBytes: its bytes plus the
// bookkeeping around it.
func size(m kafka.Message) int64 {
	n := int64(len(m.Key)+len(m.Value)) + 256
	for _, h := range m.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// budget bounds the bytes tracked; acquiring blocks at the bound (back-pressure).
type budget struct {
	sem    *semaphore.Weighted
	max    int64
	report func(int64)

	mu   sync.Mutex
	used int64
}

func (b *budget) acquire(ctx context.Context, n int64) bool {
	n = min(n, b.max) // a message larger than the bound waits for an empty budget
	if err := b.sem.Acquire(ctx, n); err != nil {
		return false
	}
	b.add(n)
	return true
}

func (b *budget) release(n int64) {
	if n <= 0 {
		return
	}
	n = min(n, b.max)
	b.add(-n) // before the semaphore lets another acquire: used never passes max
	b.sem.Release(n)
}

func (b *budget) add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used += n
	if b.report != nil {
		b.report(b.used)
	}
}

// tracker follows, per partition, which fetched offsets are handled, and yields the
// offset to commit: one past the last of the handled prefix.
type tracker struct {
	mu    sync.Mutex
	parts map[tp]*ptrack
}

type tp struct {
	topic     string
	partition int
}

type ptrack struct {
	inflight []int64         // fetched, not yet passed by the handled prefix; sorted
	sizes    map[int64]int64 // of inflight
	done     map[int64]bool  // handled, not yet passed
	next     int64           // offset to commit; -1: nothing new
}

func newTracker() *tracker { return &tracker{parts: map[tp]*ptrack{}} }

func (t *tracker) add(m kafka.Message, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tp{m.Topic, m.Partition}
	p, ok := t.parts[k]
	if !ok {
		p = &ptrack{sizes: map[int64]int64{}, done: map[int64]bool{}, next: -1}
		t.parts[k] = p
	}
	i := sort.Search(len(p.inflight), func(i int) bool { return p.inflight[i] >= m.Offset })
	if i < len(p.inflight) && p.inflight[i] == m.Offset {
		p.sizes[m.Offset] += n
		return
	}
	p.inflight = append(p.inflight, 0)
	copy(p.inflight[i+1:], p.inflight[i:])
	p.inflight[i] = m.Offset
	p.sizes[m.Offset] = n
}

// done marks m handled and returns the bytes no longer tracked.
func (t *tracker) done(m kafka.Message) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[tp{m.Topic, m.Partition}]
	if p == nil {
		return 0
	}
	p.done[m.Offset] = true
	var freed int64
	for len(p.inflight) > 0 && p.done[p.inflight[0]] {
		off := p.inflight[0]
		p.inflight = p.inflight[1:]
		freed += p.sizes[off]
		delete(p.sizes, off)
		delete(p.done, off)
		p.next = off + 1
	}
	return freed
}

// take returns the offsets to commit and forgets them.
func (t *tracker) take() map[string]map[int]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]map[int]int64{}
	for k, p := range t.parts {
		if p.next < 0 {
			continue
		}
		if out[k.topic] == nil {
			out[k.topic] = map[int]int64{}
		}
		out[k.topic][k.partition] = p.next
		p.next = -1
	}
	return out
}

// untake puts offsets whose commit failed back, unless newer ones came since.
func (t *tracker) untake(offsets map[string]map[int]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, parts := range offsets {
		for part, off := range parts {
			if p := t.parts[tp{topic, part}]; p != nil && p.next < off {
				p.next = off
			}
		}
	}
}

// drop forgets everything and returns the bytes that were tracked.
func (t *tracker) drop() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	for _, p := range t.parts {
		for _, s := range p.sizes {
			n += s
		}
	}
	t.parts = map[tp]*ptrack{}
	return n
}

// holder keeps messages that are not due yet, in due order, and dispatches them when
// due. It is bounded by the budget: what it holds is tracked.
type holder struct {
	mu   sync.Mutex
	h    dueHeap
	wake chan struct{}
}

func newHolder() *holder { return &holder{wake: make(chan struct{}, 1)} }

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

func (h *holder) hold(m kafka.Message, due time.Time) {
	h.mu.Lock()
	heap.Push(&h.h, dueItem{due, m})
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
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
