// Package spool keeps the call events ingest could not hand to Kafka in time, on local
// disk, until Kafka takes them: a durable FIFO (a write-ahead log, tidwall/wal) that is
// fsync'd before a webhook is answered, and a drainer that forwards it to Kafka in
// order, removing entries only once Kafka acknowledged them.
//
// One entry is one webhook delivery's events (one or more Kafka messages), so a call's
// events leave the spool together and in the order they came.
package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/tidwall/wal"
)

// Errors of Append. Both mean the call cannot be kept here: answer 503.
var (
	ErrFull   = errors.New("spool: full")
	ErrFailed = errors.New("spool: disk failing")
	ErrClosed = errors.New("spool: closed")
)

// DefaultMaxBytes bounds the spool's size on disk (CALLTRACK_SPOOL_MAX_BYTES).
const DefaultMaxBytes = 1 << 30

// segmentSize keeps segments small: the wal holds the tail segment and up to two
// cached ones in memory, and a truncation rewrites the rest of one segment.
const segmentSize = 1 << 20

// Options configure a spool.
type Options struct {
	MaxBytes int64 // default DefaultMaxBytes
}

// Spool is a durable FIFO of Kafka messages on local disk. It is safe for
// concurrent use; one drainer reads it.
type Spool struct {
	dir  string
	max  int64
	log  *wal.Log
	lock *os.File // holds the directory's flock until Close

	appends chan *appendReq
	stop    chan struct{}
	done    chan struct{}

	mu       sync.Mutex
	bytes    int64     // on disk, segment files
	first    uint64    // next index to drain
	last     uint64    // last index written (first > last: empty)
	oldest   time.Time // when the entry at first was spooled; zero when empty
	failed   error     // the disk error that made the spool refuse appends
	nonEmpty chan struct{}
	closed   bool
}

type appendReq struct {
	data []byte
	err  chan error
}

// entry is one spooled delivery.
type entry struct {
	At   time.Time `json:"at"`
	Msgs []message `json:"msgs"`
}

type message struct {
	Topic   string   `json:"topic"`
	Key     []byte   `json:"key,omitempty"`
	Value   []byte   `json:"value"`
	Headers []header `json:"headers,omitempty"`
	Time    int64    `json:"time,omitempty"` // unix ns
}

type header struct {
	K string `json:"k"`
	V []byte `json:"v"`
}

// Open opens (or creates) the spool in dir. Entries left by an earlier process are
// kept and drained first. The process holds an exclusive flock on the directory (its
// pid in LockFile) until Close: an Open of a directory another process (or another
// Spool of this one) has open fails with an error wrapping ErrInUse.
func Open(dir string, o Options) (_ *Spool, err error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = lock.Close()
		}
	}()
	l, err := wal.Open(dir, &wal.Options{SegmentSize: segmentSize, SegmentCacheSize: 2, AllowEmpty: true,
		LogFormat: wal.Binary, DirPerms: 0o750, FilePerms: 0o640})
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w (move the directory aside to start empty; its entries are calls not yet on Kafka)", dir, err)
	}
	s := &Spool{dir: dir, max: o.MaxBytes, log: l, lock: lock, appends: make(chan *appendReq, 256),
		stop: make(chan struct{}), done: make(chan struct{}), nonEmpty: make(chan struct{}, 1)}
	if s.first, err = l.FirstIndex(); err == nil {
		s.last, err = l.LastIndex()
	}
	if err == nil {
		s.bytes, err = dirSize(dir)
	}
	if err == nil && s.first <= s.last {
		var e *entry
		if e, err = s.read(s.first); err == nil {
			s.oldest = e.At
			s.signal()
		}
	}
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("spool: open %s: %w", dir, err)
	}
	go s.writer()
	return s, nil
}

// Dir is where the spool lives.
func (s *Spool) Dir() string { return s.dir }

// MaxBytes is the spool's bound on disk.
func (s *Spool) MaxBytes() int64 { return s.max }

// Append keeps msgs (one delivery's events) and returns once they are on disk
// (fsync'd). ErrFull when they do not fit, ErrFailed when the disk failed.
func (s *Spool) Append(ctx context.Context, msgs []kafka.Message) error {
	b, err := encode(msgs, time.Now())
	if err != nil {
		return fmt.Errorf("spool: encode: %w", err)
	}
	r := &appendReq{data: b, err: make(chan error, 1)}
	select {
	case s.appends <- r:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed over, wait for the write whatever the caller does: the answer must
	// tell the truth about what is on disk.
	return <-r.err
}

// writer writes appends in batches: concurrent deliveries share one fsync.
func (s *Spool) writer() {
	defer close(s.done)
	var batch wal.Batch
	for {
		var reqs []*appendReq
		select {
		case r := <-s.appends:
			reqs = append(reqs, r)
		case <-s.stop:
			return
		}
	more:
		for len(reqs) < 512 {
			select {
			case r := <-s.appends:
				reqs = append(reqs, r)
			default:
				break more
			}
		}
		s.writeBatch(&batch, reqs)
	}
}

func (s *Spool) writeBatch(batch *wal.Batch, reqs []*appendReq) {
	s.mu.Lock()
	failed, bytes, next := s.failed, s.bytes, s.last+1
	s.mu.Unlock()
	var taken []*appendReq
	added := int64(0)
	for _, r := range reqs {
		switch {
		case failed != nil:
			r.err <- fmt.Errorf("%w: %w", ErrFailed, failed)
		case bytes+added+int64(len(r.data))+10 > s.max:
			r.err <- ErrFull
		default:
			batch.Write(next+uint64(len(taken)), r.data)
			taken = append(taken, r)
			added += int64(len(r.data)) + 10 // + the wal's length prefix, at most
		}
	}
	if len(taken) == 0 {
		return
	}
	err := s.log.WriteBatch(batch)
	batch.Clear()
	s.mu.Lock()
	if err != nil {
		// A failed write may have left part of the batch behind: refuse from now on
		// rather than append after it.
		s.failed = err
	} else {
		wasEmpty := s.first > s.last
		s.last += uint64(len(taken))
		s.bytes += added
		if wasEmpty {
			s.oldest = time.Now()
		}
	}
	s.mu.Unlock()
	for _, r := range taken {
		if err != nil {
			r.err <- fmt.Errorf("%w: %w", ErrFailed, err)
		} else {
			r.err <- nil
		}
	}
	if err == nil {
		s.signal()
	}
}

func (s *Spool) signal() {
	select {
	case s.nonEmpty <- struct{}{}:
	default:
	}
}

// Stats is what the spool holds.
type Stats struct {
	Entries uint64    // deliveries waiting
	Bytes   int64     // on disk
	Oldest  time.Time // when the oldest waiting entry was spooled; zero when empty
	Failed  error     // the disk error, when the spool refuses appends
}

// Stats returns the spool's state now.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Bytes: s.bytes, Failed: s.failed}
	if s.first <= s.last {
		st.Entries = s.last - s.first + 1
		st.Oldest = s.oldest
	}
	return st
}

// Empty reports whether nothing waits in the spool.
func (s *Spool) Empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first > s.last
}

// CanTake reports why the spool could not take a delivery now (nil: it can).
func (s *Spool) CanTake() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.failed != nil:
		return fmt.Errorf("%w: %w", ErrFailed, s.failed)
	case s.bytes+64<<10 > s.max:
		return ErrFull
	}
	return nil
}

// peek returns up to n entries from the head, and the index after the last.
func (s *Spool) peek(n int) ([]*entry, uint64, error) {
	s.mu.Lock()
	first, last := s.first, s.last
	s.mu.Unlock()
	var out []*entry
	i := first
	for ; i <= last && len(out) < n; i++ {
		e, err := s.read(i)
		if err != nil {
			return nil, first, err
		}
		out = append(out, e)
	}
	return out, i, nil
}

// remove drops the entries before next (they are on Kafka).
func (s *Spool) remove(next uint64) error {
	if err := s.log.TruncateFront(next); err != nil {
		return fmt.Errorf("spool: remove: %w", err)
	}
	size, err := dirSize(s.dir)
	s.mu.Lock()
	s.first = next
	if err == nil {
		s.bytes = size
	}
	empty := s.first > s.last
	s.mu.Unlock()
	var oldest time.Time
	if !empty {
		if e, err := s.read(next); err == nil {
			oldest = e.At
		}
	}
	s.mu.Lock()
	s.oldest = oldest
	s.mu.Unlock()
	return nil
}

func (s *Spool) read(i uint64) (*entry, error) {
	b, err := s.log.Read(i)
	if err != nil {
		return nil, fmt.Errorf("spool: read %d: %w", i, err)
	}
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("spool: decode %d: %w", i, err)
	}
	return &e, nil
}

// Close stops taking appends, closes the files and lets the directory's lock go.
// Entries not drained stay for the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	err := s.log.Close()
	_ = s.lock.Close() // after the log: no write of this process follows the next Open
	return err
}

func encode(msgs []kafka.Message, at time.Time) ([]byte, error) {
	e := entry{At: at.UTC(), Msgs: make([]message, len(msgs))}
	for i, m := range msgs {
		mm := message{Topic: m.Topic, Key: m.Key, Value: m.Value}
		if !m.Time.IsZero() {
			mm.Time = m.Time.UnixNano()
		}
		for _, h := range m.Headers {
			mm.Headers = append(mm.Headers, header{K: h.Key, V: h.Value})
		}
		e.Msgs[i] = mm
	}
	return json.Marshal(e)
}

func (e *entry) messages() []kafka.Message {
	out := make([]kafka.Message, len(e.Msgs))
	for i, m := range e.Msgs {
		km := kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value}
		if m.Time != 0 {
			km.Time = time.Unix(0, m.Time)
		}
		for _, h := range m.Headers {
			km.Headers = append(km.Headers, kafka.Header{Key: h.K, Value: h.V})
		}
		out[i] = km
	}
	return out
}

func dirSize(dir string) (int64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	return sizeOf(des)
}

// sizeOf is the bytes of a spool directory's listing, its lock file aside.
func sizeOf(des []os.DirEntry) (int64, error) {
	var n int64
	for _, de := range des {
		if de.IsDir() || de.Name() == LockFile {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by a truncation meanwhile
			}
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}
