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
func ReadJournal(ctx context.Context, k *kafkabus.Client, topic string) (map[string]map[string]Mapping, RebuildStats, error) {
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
	out := map[string]map[string]Mapping{}
	for _, p := range parts {
		if end[p] <= first[p] {
			continue // empty partition
		}
		if err := readPartition(ctx, k, topic, p, first[p], end[p], func(m kafka.Message) {
			st.Records++
			tenant, user, ok := strings.Cut(string(m.Key), ":")
			if !ok || tenant == "" || user == "" {
				st.Invalid++
				return
			}
			if out[tenant] == nil {
				out[tenant] = map[string]Mapping{}
			}
			if len(m.Value) == 0 {
				st.Tombstones++
				delete(out[tenant], user)
				return
			}
			var mp Mapping
			if err := json.Unmarshal(m.Value, &mp); err != nil || mp.Validate() != nil || mp.MyOperatorUserID != user {
				st.Invalid++
				return
			}
			out[tenant][user] = mp
		}); err != nil {
			return nil, st, err
		}
	}
	return out, st, nil
}

// readPartition calls fn for every record of one partition in [first, end).
func readPartition(ctx context.Context, k *kafkabus.Client, topic string, part int, first, end int64, fn func(kafka.Message)) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers(), Dialer: k.Dialer(), Topic: topic, Partition: part,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return fmt.Errorf("mapping: journal %s[%d]: %w", topic, part, err)
	}
	for {
		// Compaction leaves gaps in the offsets, so stop at the first offset at or past
		// the end; a stalled read (nothing for a while) is an error, not a hang.
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		m, err := r.ReadMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("mapping: journal %s[%d] at offset %d of %d: %w", topic, part, r.Offset(), end, err)
		}
		fn(m)
		if m.Offset >= end-1 {
			return nil
		}
	}
}

// Rebuild restores Redis from the journal: it reads the topic to its end, then for
// every tenant found in the journal or in Redis (only tenants in only, when given)
// flushes the tenant's mapping keys and writes the journal's mappings back. Nothing is
// written to the journal.
func Rebuild(ctx context.Context, k *kafkabus.Client, topic string, s *Store, only ...string) (RebuildStats, error) {
	byTenant, st, err := ReadJournal(ctx, k, topic)
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
		ms := make([]Mapping, 0, len(byTenant[t]))
		for _, m := range byTenant[t] {
			ms = append(ms, m)
		}
		if err := s.Restore(ctx, t, ms); err != nil {
			return st, err
		}
		st.Tenants = append(st.Tenants, t)
		st.Mappings[t] = len(ms)
	}
	return st, nil
}

// Restore replaces a tenant's mappings in Redis with ms, in one transaction, without
// journaling (used by the rebuild from the journal).
func (s *Store) Restore(ctx context.Context, tenant string, ms []Mapping) error {
	// Index in a stable order so that a phone two agents share ends up where the
	// newer mapping put it.
	ms = slices.Clone(ms)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].UpdatedAt.Before(ms[j].UpdatedAt) })
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.indexKeys(tenant)...)
		for i := range ms {
			raw, err := json.Marshal(&ms[i])
			if err != nil {
				return err
			}
			s.index(ctx, p, tenant, &ms[i], raw)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mapping: restore %s: %w", tenant, err)
	}
	return nil
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
