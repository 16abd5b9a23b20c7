package trace

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RecordPipe queues on p the updates of one call, with the effect of applying them in
// order, for callers that batch their Redis round trips (ingest: received, then
// published). The updates go as one: one hash write, one RPUSH of all the stages,
// one index entry — about half the Redis commands of recording them one by one. With
// idx, the index entry is collected there, for FlushIndex to add with others'.
func (s *Store) RecordPipe(ctx context.Context, p redis.Pipeliner, idx *IndexBatch, tenant, callID string, us ...Update) error {
	if len(us) == 0 {
		return nil
	}
	if len(us) == 1 {
		return s.queueIndexed(ctx, p, tenant, callID, us[0], idx)
	}
	now := time.Now().UTC()
	var stages, compact []any
	m := Update{Stage: us[0].Stage}
	if m.At.IsZero() {
		m.At = now
	}
	late, written := "", false
	for i, u := range us {
		if u.At.IsZero() {
			u.At = now
		}
		if f, v, ok := compactField(&u.Stage, i); ok {
			compact = append(compact, f, v)
		} else {
			b, err := u.Stage.appendJSON(make([]byte, 0, 128))
			if err != nil {
				return err
			}
			stages = append(stages, b)
		}
		if u.Status != "" {
			m.Status = u.Status
			if !earlyStatus(u.Status) {
				late = u.Status
			}
			written = written || u.Status == StatusWritten
		}
		m.OwnerID = lastSet(m.OwnerID, u.OwnerID)
		m.RecordID = lastSet(m.RecordID, u.RecordID)
		m.LogID = lastSet(m.LogID, u.LogID)
		m.Agent = lastSet(m.Agent, u.Agent)
		if u.Call != nil {
			m.Call = u.Call
		}
		if u.Attributed != nil {
			m.Attributed = u.Attributed
		}
	}
	switch {
	case written:
		// One by one, nothing after "written" would have changed the status.
		m.Status = StatusWritten
	case late != "" && earlyStatus(m.Status):
		// One by one, the early status after the late one would not have shown (statusOf).
		m.Status = late
	}
	s.queueWrites(ctx, p, tenant, callID, m, idx, compact, stages...) // the index: first heard at the first stage
	return nil
}

// A stage of few words (ingest's received and published: a kind, no detail) goes in
// the trace hash as a field of its own — "st:<unix ns>:<its place in the batch>:<stage>"
// = its kind — in the HSET the call's other fields go with, not in the stages list:
// that list's RPUSH and EXPIRE were two of a webhook's eight Redis commands (without
// them redis-server spends 10 % less CPU a webhook; BENCHMARKS.md section 1, eleventh
// round). Name and value stay well under Redis's 64-byte listpack limit, so
// the hash stays compact. Get merges these stages into the list's by time.
const compactPrefix = "st:"

// compactField is the hash field and value of st, if it is one of few words.
func compactField(st *Stage, seq int) (field, value string, ok bool) {
	if st.Detail != "" || st.Kind == "" || len(st.Kind) > 16 || len(st.Stage) > 24 || st.Stage == "" ||
		strings.ContainsRune(st.Stage, ':') || st.At.Year() < 1970 || st.At.Year() > 2200 {
		return "", "", false
	}
	var arr [64]byte // the name on the stack; the string is its one allocation
	b := append(arr[:0], compactPrefix...)
	b = strconv.AppendInt(b, st.At.UnixNano(), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ':')
	b = append(b, st.Stage...)
	return string(b), st.Kind, true
}

// compactStage is a stage kept in the trace hash, and its place among its batch's.
type compactStage struct {
	Stage
	seq int
}

// compactStages reads the stages kept in a trace hash, in time order.
func compactStages(h map[string]string) []compactStage {
	var out []compactStage
	for f, kind := range h {
		rest, ok := strings.CutPrefix(f, compactPrefix)
		if !ok {
			continue
		}
		ns, rest, ok1 := strings.Cut(rest, ":")
		seq, name, ok2 := strings.Cut(rest, ":")
		n, err1 := strconv.ParseInt(ns, 10, 64)
		q, err2 := strconv.Atoi(seq)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || name == "" {
			continue
		}
		out = append(out, compactStage{Stage: Stage{Stage: name, At: time.Unix(0, n).UTC(), Kind: kind}, seq: q})
	}
	slices.SortFunc(out, func(a, b compactStage) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if c := cmp.Compare(a.seq, b.seq); c != 0 {
			return c
		}
		return cmp.Compare(a.Stage.Stage, b.Stage.Stage) // two batches' at one instant: the same order every read
	})
	return out
}

// mergeStages puts the hash's stages and the list's in time order. The list is in the
// order its stages reached Redis, which is not always the order they happened in: a
// backfill records "published" after Kafka's ack, by when a writer may have recorded
// "written". At one instant the order of recording stands: the list's stages in list
// order, then the hash's by their place in their batch (as recording them one by one
// would have listed them). It appends to listed.
func mergeStages(listed []Stage, compact []compactStage) []Stage {
	out := listed
	for _, c := range compact { // already in time order, ties by their place in the batch
		out = append(out, c.Stage)
	}
	slices.SortStableFunc(out, func(a, b Stage) int { return a.At.Compare(b.At) })
	return out
}

// earlyStatus reports the statuses that never replace a later one (fieldEarlyStatus).
func earlyStatus(s string) bool { return s == StatusReceived || s == StatusPublished }

func lastSet(cur, next string) string {
	if next != "" {
		return next
	}
	return cur
}
