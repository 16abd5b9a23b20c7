package callstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callwriter"
)

// Redis is the store in Redis. Every operation on a call is one script on its one
// hash, so it works on a cluster as on a single server.
type Redis struct {
	rdb  redis.UniversalClient
	keys Keys
	// Now is the clock of leases (default time.Now); replicas' clocks only need to
	// agree to well within a lease.
	Now func() time.Time
	// OnNewEpoch, when set, is called (in its own goroutine) when the store finds the
	// epoch marker missing and starts a new epoch: Redis lost its data.
	OnNewEpoch func(epoch time.Time)
}

// NewRedis returns the store with keys under prefix.
func NewRedis(rdb redis.UniversalClient, prefix string) *Redis {
	return &Redis{rdb: rdb, keys: Keys{Prefix: prefix}}
}

// Keys returns the store's key schema.
func (s *Redis) Keys() Keys { return s.keys }

func (s *Redis) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// claimScript leases the call unless another live lease holds it, turns a lapsed
// "creating" into "unknown", keeps the hash at least as long as the lease, and returns
// the hash. A live lease with the caller's own token is the caller's: go-redis sends a
// command again when its answer was lost (EOF), and that second run must not find the
// first one's lease "another worker's" and leave the call held by nobody until it lapses.
var claimScript = redis.NewScript(`
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local lease = redis.call('HGET', KEYS[1], 'lease')
if lease then
  local token, exp = string.match(lease, '^(.*)|(%d+)$')
  exp = tonumber(exp)
  if exp and exp > now and token ~= ARGV[1] then return 0 end
end
if redis.call('HGET', KEYS[1], 'status') == 'creating' then
  redis.call('HSET', KEYS[1], 'status', 'unknown')
end
redis.call('HSET', KEYS[1], 'lease', ARGV[1] .. '|' .. (now + ttl))
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return redis.call('HGETALL', KEYS[1])
`)

// saveScript writes fields (an empty value deletes one) while the lease is the
// caller's; 0 when it is not.
var saveScript = redis.NewScript(`
local lease = redis.call('HGET', KEYS[1], 'lease')
if not lease or string.sub(lease, 1, #ARGV[1] + 1) ~= ARGV[1] .. '|' then return 0 end
for i = 4, #ARGV, 2 do
  if ARGV[i+1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
end
if ARGV[2] == '1' then redis.call('HDEL', KEYS[1], 'lease') end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`)

var releaseScript = redis.NewScript(`
local lease = redis.call('HGET', KEYS[1], 'lease')
if not lease or string.sub(lease, 1, #ARGV[1] + 1) ~= ARGV[1] .. '|' then return 0 end
redis.call('HDEL', KEYS[1], 'lease')
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return 1
`)

// Claim implements callwriter.Store.
func (s *Redis) Claim(ctx context.Context, tenant, callID string, ttl time.Duration) (callwriter.Lease, callwriter.State, error) {
	l := callwriter.Lease{Tenant: tenant, CallID: callID, Token: newToken()}
	var claim *redis.Cmd
	var epoch *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		claim = claimScript.Eval(ctx, p, []string{s.keys.Call(tenant, callID)}, l.Token, s.now().UnixMilli(), ttl.Milliseconds())
		epoch = p.Get(ctx, s.keys.Epoch())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return l, callwriter.State{}, fmt.Errorf("callstate: claim %s/%s: %w", tenant, callID, err)
	}
	if err := claim.Err(); err != nil {
		return l, callwriter.State{}, fmt.Errorf("callstate: claim %s/%s: %w", tenant, callID, err)
	}
	if n, ok := claim.Val().(int64); ok && n == 0 {
		return l, callwriter.State{}, callwriter.ErrBusy
	}
	raw, err := claim.StringSlice()
	if err != nil {
		return l, callwriter.State{}, fmt.Errorf("callstate: claim %s/%s: %w", tenant, callID, err)
	}
	h := map[string]string{}
	for i := 0; i+1 < len(raw); i += 2 {
		h[raw[i]] = raw[i+1]
	}
	st, err := decode(h)
	if err != nil {
		_ = s.Release(context.WithoutCancel(ctx), l)
		return l, st, fmt.Errorf("callstate: %s/%s: %w", tenant, callID, err)
	}
	if st.Epoch, err = s.epochFrom(ctx, epoch); err != nil {
		_ = s.Release(context.WithoutCancel(ctx), l)
		return l, st, err
	}
	return l, st, nil
}

// Save implements callwriter.Store.
func (s *Redis) Save(ctx context.Context, l callwriter.Lease, st callwriter.State, release bool) error {
	fields, err := encode(st)
	if err != nil {
		return err
	}
	rel := "0"
	if release {
		rel = "1"
	}
	args := append([]any{l.Token, rel, StateTTL.Milliseconds()}, fields...)
	n, err := saveScript.Run(ctx, s.rdb, []string{s.keys.Call(l.Tenant, l.CallID)}, args...).Int()
	if err != nil {
		return fmt.Errorf("callstate: save %s/%s: %w", l.Tenant, l.CallID, err)
	}
	if n == 0 {
		return callwriter.ErrLeaseLost
	}
	return nil
}

// Release implements callwriter.Store.
func (s *Redis) Release(ctx context.Context, l callwriter.Lease) error {
	n, err := releaseScript.Run(ctx, s.rdb, []string{s.keys.Call(l.Tenant, l.CallID)}, l.Token).Int()
	if err != nil {
		return fmt.Errorf("callstate: release %s/%s: %w", l.Tenant, l.CallID, err)
	}
	if n == 0 {
		return callwriter.ErrLeaseLost
	}
	return nil
}

// Written reports whether the call's record is written, and its id.
func (s *Redis) Written(ctx context.Context, tenant, callID string) (string, bool, error) {
	v, err := s.rdb.HMGet(ctx, s.keys.Call(tenant, callID), fieldStatus, fieldRecord).Result()
	if err != nil {
		return "", false, fmt.Errorf("callstate: %s/%s: %w", tenant, callID, err)
	}
	status, _ := v[0].(string)
	rec, _ := v[1].(string)
	return rec, status == string(callwriter.StatusWritten), nil
}

// Epoch returns when Redis's current data began (zero: with the first call ever),
// and whether Redis has an epoch marker at all.
func (s *Redis) Epoch(ctx context.Context) (time.Time, bool, error) {
	v, err := s.rdb.Get(ctx, s.keys.Epoch()).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("callstate: epoch: %w", err)
	}
	return epochTime(v), true, nil
}

// StartEpoch sets the epoch marker to at unless one is set, and returns the epoch in
// force. A zero at says nothing was ever written before (a new deployment): no call
// needs a lookup for having come before the epoch. OnNewEpoch is called when this
// call set the marker.
func (s *Redis) StartEpoch(ctx context.Context, at time.Time) (time.Time, error) {
	ms := int64(0)
	if !at.IsZero() {
		ms = at.UnixMilli()
	}
	ok, err := s.rdb.SetNX(ctx, s.keys.Epoch(), ms, 0).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("callstate: epoch: %w", err)
	}
	if ok {
		if s.OnNewEpoch != nil {
			go s.OnNewEpoch(epochTime(ms))
		}
		return epochTime(ms), nil
	}
	e, _, err := s.Epoch(ctx)
	return e, err
}

func epochTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func (s *Redis) epochFrom(ctx context.Context, cmd *redis.StringCmd) (time.Time, error) {
	v, err := cmd.Int64()
	if err == nil {
		return epochTime(v), nil
	}
	if !errors.Is(err, redis.Nil) {
		return time.Time{}, fmt.Errorf("callstate: epoch: %w", err)
	}
	// Redis lost its data while writers run: what came before now may be written.
	return s.StartEpoch(ctx, s.now())
}

// AddParked puts a call in its tenant's parked set.
func (s *Redis) AddParked(ctx context.Context, l *call.Log) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.keys.Parked(l.Tenant), l.CallID, b).Err(); err != nil {
		return fmt.Errorf("callstate: park %s/%s: %w", l.Tenant, l.CallID, err)
	}
	return nil
}

// RemoveParked takes a call out of its tenant's parked set.
func (s *Redis) RemoveParked(ctx context.Context, tenant, callID string) error {
	if err := s.rdb.HDel(ctx, s.keys.Parked(tenant), callID).Err(); err != nil {
		return fmt.Errorf("callstate: unpark %s/%s: %w", tenant, callID, err)
	}
	return nil
}

// RestoreParked puts calls back in the parked sets (after Redis lost them), with their
// call state marked parked so that writing them unparks them; calls written since are
// skipped. It returns how many it restored.
func (s *Redis) RestoreParked(ctx context.Context, logs []*call.Log) (int, error) {
	n := 0
	for _, l := range logs {
		_, written, err := s.Written(ctx, l.Tenant, l.CallID)
		if err != nil {
			return n, err
		}
		if written {
			continue
		}
		b, err := json.Marshal(l)
		if err != nil {
			return n, err
		}
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, s.keys.Parked(l.Tenant), l.CallID, b)
			p.HSet(ctx, s.keys.Call(l.Tenant, l.CallID), fieldParked, "1", fieldLog, b)
			p.PExpire(ctx, s.keys.Call(l.Tenant, l.CallID), StateTTL)
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("callstate: restore parked %s/%s: %w", l.Tenant, l.CallID, err)
		}
		n++
	}
	return n, nil
}

// ScanParked calls fn with each parked call of a tenant (raw log JSON), in batches.
func (s *Redis) ScanParked(ctx context.Context, tenant string, fn func(callID, raw string) error) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, s.keys.Parked(tenant), cursor, "", 200).Result()
		if err != nil {
			return fmt.Errorf("callstate: parked %s: %w", tenant, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if err := fn(kv[i], kv[i+1]); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// Parked lists a tenant's parked calls.
func (s *Redis) Parked(ctx context.Context, tenant string) ([]call.Log, error) {
	var out []call.Log
	err := s.ScanParked(ctx, tenant, func(_, raw string) error {
		var l call.Log
		if json.Unmarshal([]byte(raw), &l) == nil {
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// claimRedrive counts a call's re-publications ("attempts|last unix time" per call)
// and allows one when the last is gap old and fewer than max were made.
var claimRedrive = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
local now, gap, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n, last = 0, 0
if v then
  local a, b = string.match(v, '^(%d+)|(%d+)$')
  n, last = tonumber(a) or 0, tonumber(b) or 0
end
if n >= max or now - last < gap then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], (n + 1) .. '|' .. now)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return n + 1
`)

// ClaimRedrive allows one re-publication of a parked call when the last was at least
// gap ago and fewer than max were made.
func (s *Redis) ClaimRedrive(ctx context.Context, tenant, callID string, gap time.Duration, max int) (bool, error) {
	n, err := claimRedrive.Run(ctx, s.rdb, []string{s.keys.Redrives(tenant)}, callID, s.now().Unix(),
		int64(gap/time.Second), max, (7 * 24 * time.Hour).Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("callstate: redrive claim %s/%s: %w", tenant, callID, err)
	}
	return n > 0, nil
}

func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// encode turns a state into field/value pairs for saveScript ("" deletes a field).
func encode(st callwriter.State) ([]any, error) {
	str := func(v any) (string, error) {
		switch v := v.(type) {
		case *call.Log:
			if v == nil {
				return "", nil
			}
		case *call.RecordingEvent:
			if v == nil {
				return "", nil
			}
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	logJSON, err := str(st.Log)
	if err != nil {
		return nil, err
	}
	pendingJSON, err := str(st.Pending)
	if err != nil {
		return nil, err
	}
	parked, since := "", ""
	if st.Parked {
		parked = "1"
	}
	if !st.Since.IsZero() {
		since = strconv.FormatInt(st.Since.UnixMilli(), 10)
	}
	return []any{fieldStatus, string(st.Status), fieldRecord, st.RecordID, fieldLog, logJSON,
		fieldPending, pendingJSON, fieldParked, parked, fieldSince, since}, nil
}

func decode(h map[string]string) (callwriter.State, error) {
	st := callwriter.State{Status: callwriter.Status(h[fieldStatus]), RecordID: h[fieldRecord], Parked: h[fieldParked] == "1"}
	if v := h[fieldLog]; v != "" {
		st.Log = &call.Log{}
		if err := json.Unmarshal([]byte(v), st.Log); err != nil {
			return st, fmt.Errorf("stored log: %w", err)
		}
	}
	if v := h[fieldPending]; v != "" {
		st.Pending = &call.RecordingEvent{}
		if err := json.Unmarshal([]byte(v), st.Pending); err != nil {
			return st, fmt.Errorf("stored amendment: %w", err)
		}
	}
	if v, err := strconv.ParseInt(h[fieldSince], 10, 64); err == nil {
		st.Since = time.UnixMilli(v)
	}
	return st, nil
}
