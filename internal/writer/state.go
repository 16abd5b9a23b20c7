package writer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/call"
)

// Redis state the writer keeps beside the idempotency keys:
//   - written: the call log as written, so a late recording can rewrite the record
//     (Kylas's PUT replaces the whole record);
//   - pending amendment: a recording or disposition that arrived before its call log was written;
//   - parked: unattributed call logs, per tenant, waiting for a mapping.
const stateTTL = 30 * 24 * time.Hour

func (w *Writer) key(what, tenant, callID string) string {
	return fmt.Sprintf("%s:%s:%s:%s", w.Prefix, what, tenant, callID)
}

// ParkedKey is the hash of a tenant's unattributed call logs (call id → log JSON).
func ParkedKey(prefix, tenant string) string { return fmt.Sprintf("%s:parked:%s", prefix, tenant) }

func (w *Writer) saveWritten(ctx context.Context, l *call.Log) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return w.Redis.Set(ctx, w.key("written", l.Tenant, l.CallID), b, stateTTL).Err()
}

func (w *Writer) loadWritten(ctx context.Context, tenant, callID string) (*call.Log, error) {
	b, err := w.Redis.Get(ctx, w.key("written", tenant, callID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var l call.Log
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// keepPending merges r into the call's pending amendment.
func (w *Writer) keepPending(ctx context.Context, r *call.RecordingEvent) error {
	cur, err := w.pending(ctx, r.Tenant, r.CallID)
	if err != nil {
		return err
	}
	if cur != nil {
		if r.Recording.Empty() {
			r.Recording = cur.Recording
		}
		if r.Disposition == "" {
			r.Disposition = cur.Disposition
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return w.Redis.Set(ctx, w.key("pending-amendment", r.Tenant, r.CallID), b, stateTTL).Err()
}

func (w *Writer) pending(ctx context.Context, tenant, callID string) (*call.RecordingEvent, error) {
	b, err := w.Redis.Get(ctx, w.key("pending-amendment", tenant, callID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r call.RecordingEvent
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (w *Writer) park(ctx context.Context, l *call.Log) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return w.Redis.HSet(ctx, ParkedKey(w.Prefix, l.Tenant), l.CallID, b).Err()
}

func (w *Writer) unpark(ctx context.Context, tenant, callID string) error {
	return w.Redis.HDel(ctx, ParkedKey(w.Prefix, tenant), callID).Err()
}

// Parked lists a tenant's unattributed call logs.
func (w *Writer) Parked(ctx context.Context, tenant string) ([]call.Log, error) {
	all, err := w.Redis.HGetAll(ctx, ParkedKey(w.Prefix, tenant)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]call.Log, 0, len(all))
	for _, v := range all {
		var l call.Log
		if json.Unmarshal([]byte(v), &l) == nil {
			out = append(out, l)
		}
	}
	return out, nil
}
