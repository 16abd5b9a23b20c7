package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/myoperator"
)

// scratchBuf holds what is hashed, or encoded before its copy, while it is: nothing
// else keeps it.
var scratchBuf = sync.Pool{New: func() any { return new([]byte) }}

// withScratch fills a pooled buffer and returns what use makes of it; use must not keep
// the buffer.
func withScratch[T any](fill func([]byte) ([]byte, error), use func([]byte) T) (T, error) {
	buf := scratchBuf.Get().(*[]byte)
	b, err := fill((*buf)[:0])
	var out T
	if err == nil {
		out = use(b)
	}
	if cap(b) <= 64<<10 { // an odd, huge payload's buffer is not kept
		*buf = b[:0]
		scratchBuf.Put(buf)
	}
	return out, err
}

// encodeExact returns what appendTo encodes, in a slice of its own size: an event's
// value lives until Kafka's ack, and the sample afterCall's 1.2 KB of JSON otherwise
// took a 2 KB allocation (serve's heap profile: the largest of a webhook's).
func encodeExact(appendTo func([]byte) ([]byte, error)) ([]byte, error) {
	return withScratch(appendTo, bytes.Clone)
}

// payloadHash identifies a payload whatever its encoding: the hash of its JSON with
// sorted keys and no whitespace (myoperator.Canonical).
func payloadHash(raw myoperator.Object) string {
	return sum(func(b []byte) []byte { return raw.AppendCanonical(b) })
}

// logHash identifies the call log an afterCall describes: the hash of every field
// the parse read from the payload — not the owner, internal flag or receipt time
// ingest adds. A redelivery, in whatever encoding, parses to the same log; two
// payloads that differ only where calltrack reads nothing would publish the same
// event, so one is enough. It replaces payloadHash for afterCalls: canonicalising
// the payload's JSON cost 7 % of serve's CPU (profile of serve), this a tenth of it.
// TestLogHashCoversEveryField keeps it in step with call.Log.
func logHash(l *call.Log) string {
	return sum(func(b []byte) []byte { return appendLog(b, l) })
}

func sum(appendTo func([]byte) []byte) string {
	h, _ := withScratch(func(b []byte) ([]byte, error) { return appendTo(b), nil }, func(b []byte) string {
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:16])
	})
	return h
}

// appendLog appends l's payload fields, each length- or presence-prefixed so that no
// two logs append the same bytes.
func appendLog(b []byte, l *call.Log) []byte {
	b = appendStrings(b, l.Tenant, l.CallID, l.LogID, l.CompanyID, l.Source, string(l.Direction), string(l.Status),
		l.ClickRef, l.CallerNumber, l.CallerName, l.DID, l.Department, l.DepartmentID, l.Disposition)
	b = appendBool(b, l.ClickToCall)
	b = appendTime(b, l.StartedAt)
	b = appendTime(b, l.EndedAt)
	b = binary.AppendVarint(b, int64(l.Duration))
	b = binary.AppendUvarint(b, uint64(len(l.Legs)))
	for i := range l.Legs {
		lg := &l.Legs[i]
		b = appendTime(b, lg.RingStart)
		b = appendStrings(b, lg.DialStatus, lg.Action, lg.DID)
		b = appendTime(b, lg.StartedAt)
		b = appendTime(b, lg.EndedAt)
		b = binary.AppendVarint(b, int64(lg.Duration))
		b = appendBool(b, lg.Answered)
		b = appendAgents(b, lg.Agents)
		b = appendAgent(b, lg.AnsweredBy)
		b = appendAgents(b, lg.Transfers)
	}
	b = appendAgent(b, l.Agent)
	b = appendBool(b, l.Recording != nil)
	if l.Recording != nil {
		b = appendStrings(b, l.Recording.URL, l.Recording.FileName)
	}
	if l.CallerRaw != "" {
		// Last and only when set: a log without it hashes as before the field was added,
		// so MyOperator's retry of a delivery taken before an upgrade is still a duplicate.
		b = appendStrings(b, l.CallerRaw)
	}
	return b
}

func appendStrings(b []byte, ss ...string) []byte {
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendTime appends the instant (the zero time apart from every other).
func appendTime(b []byte, t time.Time) []byte {
	b = appendBool(b, !t.IsZero())
	return binary.AppendVarint(b, t.UnixNano())
}

func appendAgents(b []byte, as []call.Agent) []byte {
	b = binary.AppendUvarint(b, uint64(len(as)))
	for i := range as {
		b = appendAgent(b, &as[i])
	}
	return b
}

func appendAgent(b []byte, a *call.Agent) []byte {
	b = appendBool(b, a != nil)
	if a != nil {
		b = appendStrings(b, a.ID, a.Name, a.Email, a.Extension, a.Phone)
	}
	return b
}
