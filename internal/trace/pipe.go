package trace

import (
	"context"
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
	stages := make([]any, len(us))
	m := Update{Stage: us[0].Stage}
	if m.At.IsZero() {
		m.At = now
	}
	late, written := "", false
	for i, u := range us {
		if u.At.IsZero() {
			u.At = now
		}
		b, err := u.Stage.appendJSON(make([]byte, 0, 128))
		if err != nil {
			return err
		}
		stages[i] = b
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
	}
	switch {
	case written:
		// One by one, nothing after "written" would have changed the status.
		m.Status = StatusWritten
	case late != "" && earlyStatus(m.Status):
		// One by one, the early status after the late one would not have shown (statusOf).
		m.Status = late
	}
	s.queueWrites(ctx, p, tenant, callID, m, idx, stages...) // the index: first heard at the first stage
	return nil
}

// earlyStatus reports the statuses that never replace a later one (fieldEarlyStatus).
func earlyStatus(s string) bool { return s == StatusReceived || s == StatusPublished }

func lastSet(cur, next string) string {
	if next != "" {
		return next
	}
	return cur
}
