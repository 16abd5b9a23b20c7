package mapping

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
)

// RebuildStats says what a rebuild read and restored.
type RebuildStats struct {
	Records    int            // journal records read
	Tombstones int            // of which deletions
	Invalid    int            // records skipped: bad key or value
	Tenants    []string       // tenants whose mappings were flushed and restored
	Mappings   map[string]int // mappings restored, per tenant
}

// Total is the number of mappings restored.
func (r RebuildStats) Total() int {
	n := 0
	for _, c := range r.Mappings {
		n += c
	}
	return n
}

// ReadJournal reads the journal topic from the beginning to the end offsets it has
// when called (partition readers, no consumer group) and returns the latest mapping
// of every agent per tenant: the last record of a key wins and a tombstone deletes.
func ReadJournal(ctx context.Context, k *kafkabus.Client, topic string) (map[string]map[string]call.Mapping, RebuildStats, error) {
	entries, st, err := readJournal(ctx, k, topic)
	if err != nil {
		return nil, st, err
	}
	out := make(map[string]map[string]call.Mapping, len(entries))
	for t, es := range entries {
		out[t] = make(map[string]call.Mapping, len(es))
		for u, e := range es {
			out[t][u] = e.m
		}
	}
	return out, st, nil
}

// journalEntry is a mapping as read from the journal, with its JSON as stored (Redis
// gets the same bytes, not a re-encoding).
type journalEntry struct {
	m   call.Mapping
	raw []byte
}

// partitionRead is what one partition of the journal says: the last record of each
// key in it (raw nil: a tombstone).
type partitionRead struct {
	keys  map[string]map[string]journalEntry
	stats RebuildStats
}

// readJournal reads every partition at once (each keeps its own order: a key lives in
// one partition), then merges them in partition order.
func readJournal(ctx context.Context, k *kafkabus.Client, topic string) (map[string]map[string]journalEntry, RebuildStats, error) {
	var st RebuildStats
	md, err := k.Raw().Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, st, fmt.Errorf("mapping: journal %s: metadata: %w", topic, err)
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, st, fmt.Errorf("mapping: journal %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	if len(parts) == 0 {
		return nil, st, fmt.Errorf("mapping: journal topic %s not found", topic)
	}
	sort.Ints(parts)
	first, err := k.FirstOffsets(ctx, topic, parts)
	if err != nil {
		return nil, st, fmt.Errorf("mapping: journal %s: %w", topic, err)
	}
	end, err := k.EndOffsets(ctx, topic, parts)
	if err != nil {
		return nil, st, fmt.Errorf("mapping: journal %s: %w", topic, err)
	}
	reads := make([]partitionRead, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range parts {
		if end[p] <= first[p] {
			continue // empty partition
		}
		g.Go(func() error {
			pr := partitionRead{keys: map[string]map[string]journalEntry{}}
			err := readPartition(gctx, k, topic, p, first[p], end[p], func(m kafka.Message) {
				pr.stats.Records++
				tenant, user, ok := strings.Cut(string(m.Key), ":")
				if !ok || tenant == "" || user == "" {
					pr.stats.Invalid++
					return
				}
				if pr.keys[tenant] == nil {
					pr.keys[tenant] = map[string]journalEntry{}
				}
				if len(m.Value) == 0 {
					pr.stats.Tombstones++
					pr.keys[tenant][user] = journalEntry{}
					return
				}
				var mp call.Mapping
				if err := json.Unmarshal(m.Value, &mp); err != nil || mp.Validate() != nil || mp.MyOperatorUserID != user {
					pr.stats.Invalid++
					return
				}
				pr.keys[tenant][user] = journalEntry{m: mp, raw: m.Value}
			})
			reads[i] = pr
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, st, err
	}
	out := map[string]map[string]journalEntry{}
	for _, pr := range reads {
		st.Records += pr.stats.Records
		st.Tombstones += pr.stats.Tombstones
		st.Invalid += pr.stats.Invalid
		for tenant, es := range pr.keys {
			if out[tenant] == nil {
				// The first partition with this tenant: its map becomes the result (no
				// copy); a tombstone in it deletes nothing older, so it is dropped.
				for user, e := range es {
					if e.raw == nil {
						delete(es, user)
					}
				}
				out[tenant] = es
				continue
			}
			for user, e := range es {
				if e.raw == nil {
					delete(out[tenant], user)
				} else {
					out[tenant][user] = e
				}
			}
		}
	}
	return out, st, nil
}

// readPartition calls fn for every record of one partition in [first, end).
// Compaction leaves gaps in the offsets, which the read skips; a stalled read (no
// progress for 30 s) is an error, not a hang.
func readPartition(ctx context.Context, k *kafkabus.Client, topic string, part int, first, end int64, fn func(kafka.Message)) error {
	err := k.ReadRange(ctx, topic, part, first, end, 30*time.Second, func(m kafka.Message) error { fn(m); return nil })
	if err != nil {
		return fmt.Errorf("mapping: journal: %w", err)
	}
	return nil
}

// Rebuild restores Redis from the journal: it reads the topic to its end, then for
// every tenant found in the journal or in Redis (only tenants in only, when given)
// flushes the tenant's mapping keys and writes the journal's mappings back. Nothing is
// written to the journal.
func Rebuild(ctx context.Context, k *kafkabus.Client, topic string, s *Store, only ...string) (RebuildStats, error) {
	byTenant, st, err := readJournal(ctx, k, topic)
	if err != nil {
		return st, err
	}
	inRedis, err := s.Tenants(ctx)
	if err != nil {
		return st, err
	}
	tenants := inRedis
	for t := range byTenant {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	tenants = slices.Compact(tenants)
	if len(only) > 0 {
		tenants = slices.DeleteFunc(tenants, func(t string) bool { return !slices.Contains(only, t) })
		for _, t := range only {
			if !slices.Contains(tenants, t) {
				tenants = append(tenants, t)
			}
		}
		slices.Sort(tenants)
	}
	st.Mappings = map[string]int{}
	for _, t := range tenants {
		es := make([]journalEntry, 0, len(byTenant[t]))
		for _, e := range byTenant[t] {
			es = append(es, e)
		}
		if err := s.restore(ctx, t, es); err != nil {
			return st, err
		}
		st.Tenants = append(st.Tenants, t)
		st.Mappings[t] = len(es)
	}
	return st, nil
}

// Restore replaces a tenant's mappings in Redis with ms, in one transaction, without
// journaling (used by the rebuild from the journal).
func (s *Store) Restore(ctx context.Context, tenant string, ms []call.Mapping) error {
	es := make([]journalEntry, len(ms))
	for i := range ms {
		raw, err := json.Marshal(&ms[i])
		if err != nil {
			return fmt.Errorf("mapping: restore %s: %w", tenant, err)
		}
		es[i] = journalEntry{m: ms[i], raw: raw}
	}
	return s.restore(ctx, tenant, es)
}

// restoreChunk is the most field/value pairs one HSET carries: 100k mappings are a few
// hundred commands in the transaction, not half a million.
const restoreChunk = 1000

func (s *Store) restore(ctx context.Context, tenant string, es []journalEntry) error {
	// Index in a stable order so that a phone two agents share ends up where the
	// newer mapping put it (the last write of a field wins), as Fill gives it. Admins'
	// changes cannot add a shared value (ErrConflict), but user sync stores one left to
	// another agent (UpdateLeaving), and a journal written before the rule may hold it.
	slices.SortStableFunc(es, func(a, b journalEntry) int { return a.m.UpdatedAt.Compare(b.m.UpdatedAt) })
	// Fields in that order: within a transaction HSETs apply in order, so for a field
	// given twice the later value stays.
	var byID, email, phone, uuid []any
	for i := range es {
		m := &es[i].m
		byID = append(byID, m.MyOperatorUserID, es[i].raw)
		if m.Email != "" {
			email = append(email, m.Email, m.MyOperatorUserID)
		}
		for _, ph := range m.Phones {
			phone = append(phone, ph, m.MyOperatorUserID)
		}
		if m.MyOperatorUUID != "" {
			uuid = append(uuid, m.MyOperatorUUID, m.MyOperatorUserID)
		}
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.indexKeys(tenant)...)
		hsetChunks(ctx, p, s.key(tenant, "byid"), byID)
		hsetChunks(ctx, p, s.key(tenant, "email"), email)
		hsetChunks(ctx, p, s.key(tenant, "phone"), phone)
		hsetChunks(ctx, p, s.key(tenant, "uuid"), uuid)
		return nil
	})
	if err != nil {
		return fmt.Errorf("mapping: restore %s: %w", tenant, err)
	}
	return nil
}

// hsetChunks queues HSETs of key with pairs (field, value, ...), restoreChunk pairs
// at a time.
func hsetChunks(ctx context.Context, p redis.Pipeliner, key string, pairs []any) {
	for len(pairs) > 0 {
		n := min(len(pairs), 2*restoreChunk)
		p.HSet(ctx, key, pairs[:n]...)
		pairs = pairs[n:]
	}
}

// Tenants lists the tenants that have mappings in Redis.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	var (
		mu  sync.Mutex
		out []string
	)
	collect := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, s.prefix+":map:{*}:byid", 500).Iterator()
		for iter.Next(ctx) {
			k := strings.TrimPrefix(iter.Val(), s.prefix+":map:{")
			if t, ok := strings.CutSuffix(k, "}:byid"); ok {
				mu.Lock()
				out = append(out, t)
				mu.Unlock()
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		// On a cluster, SCAN sees one node's keys: ask every master.
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return collect(ctx, c) })
	} else {
		err = collect(ctx, s.rdb)
	}
	if err != nil {
		return nil, fmt.Errorf("mapping: list tenants: %w", err)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
