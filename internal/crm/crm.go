// Package crm defines what a CRM adapter must do for the writer, and the error
// type adapters use to say whether a failed write is worth retrying.
package crm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/calltrack/calltrack/internal/call"
)

// Call is what the writer asks an adapter to put in the CRM: the call log with its
// owner resolved, and the recording link to show (already made durable by the writer).
type Call struct {
	Log          call.Log
	OwnerID      string // CRM user id the record must be owned by
	RecordingURL string // link to put in the CRM record; empty when none
}

// Adapter writes call activities to one tenant's CRM, and finds them again.
type Adapter interface {
	// CreateCall creates the call activity owned by c.OwnerID and returns the CRM record id.
	// An error for which OutcomeUnknown is true means the record may exist: ask
	// FindCall before creating again.
	CreateCall(ctx context.Context, c Call) (recordID string, err error)
	// UpdateCall rewrites the record (e.g. to add a recording that arrived later).
	UpdateCall(ctx context.Context, recordID string, c Call) error
	Finder
}

// Finder finds the record calltrack wrote for a call, by calltrack's call id (which
// every adapter puts in the record where its CRM lets it be searched). The writer asks
// it before any create whose earlier attempt had an unknown outcome: only found=false
// with a nil error allows a new create. Ask only after that attempt has returned: a
// CRM search may lag behind its writes, and each adapter answers "absent" only from a
// search made after its documented settle time (docs/crm-contracts.md).
type Finder interface {
	FindCall(ctx context.Context, c Call) (recordID string, found bool, err error)
}

// SettleDelay is how long after calltrack stopped waiting for a create's answer the
// CRM is asked whether it has the record (calls and follow-up tasks): past common
// gateway and server timeouts (60 s) with room to spare, after the adapter's own
// request timeout (Kylas 15 s, Zoho 20 s) ran out. A slow backend finishes a request
// its client gave up on; asked too early (10 s), a CRM 40 s slow got each create of
// that window twice. It delays only writes whose create got no answer.
const SettleDelay = 2 * time.Minute

// Error is a failed CRM request. Adapters return it (wrapped or not) so the writer
// can tell a permanent rejection from a transient failure.
type Error struct {
	Op         string        // e.g. "kylas: create call log"
	Status     int           // HTTP status; 0 for transport errors
	Code       string        // CRM error code, if any
	Message    string        // CRM error message, if any
	RetryAfter time.Duration // what the CRM asked us to wait, if it said
	Permanent  bool          // retrying the same request cannot succeed
	// Unknown: the request was sent and may have been applied (no answer, an answer
	// that could not be read, a 5xx other than 503). For a create it means the record
	// may exist; errors.Is(err, ErrOutcomeUnknown) reports it.
	Unknown bool
	// PartyGone: the CRM refused the write because the lead or contact it is related
	// to does not exist (deleted, merged or converted since the number was looked up);
	// errors.Is(err, ErrPartyGone) reports it. Set only for that field's own refusal
	// (Kylas relatedTo[i].id, Zoho Who_Id / What_Id), never for any 400.
	PartyGone bool
	Err       error // underlying transport error, if any
}

// ErrOutcomeUnknown matches (errors.Is) every *Error whose Unknown is set: a write
// that may or may not have been applied. It is never a clean failure: before a new
// create, the record must be looked up (Finder).
var ErrOutcomeUnknown = errors.New("crm: outcome unknown: the request may have been applied")

// ErrPartyGone matches (errors.Is) every *Error whose PartyGone is set: the record
// names a lead or contact the CRM no longer has. Parties.RetryIfGone forgets the
// cached party and writes once more.
var ErrPartyGone = errors.New("crm: the related lead or contact does not exist")

// Is makes errors.Is(err, ErrOutcomeUnknown) true for an unknown outcome, and
// errors.Is(err, ErrPartyGone) for a refused related record.
func (e *Error) Is(target error) bool {
	return (target == ErrOutcomeUnknown && e.Unknown) || (target == ErrPartyGone && e.PartyGone)
}

// OutcomeUnknown reports whether err leaves it open whether the write was applied.
func OutcomeUnknown(err error) bool { return errors.Is(err, ErrOutcomeUnknown) }

func (e *Error) Error() string {
	msg := e.Op
	if e.Status != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// StatusError builds the Error for an HTTP response status: 408, 425, 429 and 5xx are
// transient, other 4xx permanent. A 5xx other than 503 leaves the outcome unknown:
// the server may have stored the record before failing (a 503 is an overloaded or
// unavailable service refusing the request before handling it).
func StatusError(op string, resp *http.Response, code, message string) *Error {
	e := &Error{Op: op, Status: resp.StatusCode, Code: code, Message: message}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooEarly,
		resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		e.Permanent = false
		e.Unknown = resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable
	case resp.StatusCode >= 400:
		e.Permanent = true
	}
	e.RetryAfter = RetryAfterHeader(resp.Header)
	return e
}

// RetryAfterHeader reads Retry-After (seconds or HTTP date) or X-RateLimit-Retry-After /
// X-RateLimit-Reset style headers; zero when none is given.
func RetryAfterHeader(h http.Header) time.Duration {
	for _, k := range []string{"Retry-After", "X-RateLimit-Retry-After", "X-Ratelimit-Retry-After"} {
		v := h.Get(k)
		if v == "" {
			continue
		}
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			return time.Duration(s * float64(time.Second))
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := time.Until(t); d > 0 {
				return d
			}
		}
	}
	return 0
}

// IsPermanent reports whether err is a CRM rejection that retrying cannot fix.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// HTTPStatus returns the CRM's HTTP status behind err, or 0.
func HTTPStatus(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// RetryAfter returns how long the CRM asked us to wait, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// RetrySearch runs a lead/contact search up to 3 times while it fails transiently.
// Why: a call write needs several searches before its one write, so without a retry
// per search the chance that a whole attempt gets through shrinks with every search
// (0.7⁸ at 30% failures); searches are safe to repeat. It honours a short Retry-After.
func RetrySearch[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		v, err := fn()
		if err == nil || IsPermanent(err) || attempt == 3 {
			return v, err
		}
		d := max(wait, RetryAfter(err))
		if d > 2*time.Second {
			return v, err // a long wait: leave it to the writer's schedule
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
		wait *= 2
	}
}

// TransportError wraps a failed round trip (transient). The URL is dropped from a
// *url.Error: its query can carry a customer's phone number (Zoho's search) or a
// token, and the error ends up in logs, traces and DLQ headers. Unless the request
// provably never left (no connection could be made, or the context ended before it
// was sent), the outcome is unknown: the server may have applied it and lost the answer.
func TransportError(op string, err error) *Error {
	unknown := !neverSent(err)
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return &Error{Op: op, Err: err, Unknown: unknown}
}

// neverSent: the dial failed, so no byte of the request reached the server.
func neverSent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// DefaultSearchSettle is how long after a write a CRM's search is trusted to show it
// when the CRM documents no bound (Kylas's and Zoho's searches are index-backed and
// neither publishes one; docs/crm-contracts.md).
const DefaultSearchSettle = 3 * time.Second

// FindSettled runs a Finder's search (once) and, when it finds nothing, runs it again
// once settle has passed since FindSettled began. Why: a search index may not yet
// show a record stored just before the first search; a record stored before
// FindSettled was called is visible to a search made settle later. So "absent" is
// only ever the answer of a search made at least settle after the call began.
func FindSettled(ctx context.Context, settle time.Duration, once func(context.Context) (string, bool, error)) (string, bool, error) {
	begun := time.Now()
	id, found, err := once(ctx)
	if err != nil || found {
		return id, found, err
	}
	if wait := settle - time.Since(begun); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", false, &Error{Op: "crm: find call", Message: "waiting for the search to settle", Err: ctx.Err()}
		case <-t.C:
		}
	}
	return once(ctx)
}
