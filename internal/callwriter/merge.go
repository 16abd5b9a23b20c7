package callwriter

import (
	"slices"

	"github.com/calltrack/calltrack/internal/call"
)

// applyAmendment puts an amendment's recording and disposition on l and reports
// whether l changed.
func applyAmendment(l *call.Log, am *call.RecordingEvent) bool {
	if am == nil {
		return false
	}
	changed := false
	if !am.Recording.Empty() {
		// Field by field: a v2 file name must not drop a v1 URL, nor the reverse.
		rec := recordingOf(l)
		if am.Recording.URL != "" {
			rec.URL = am.Recording.URL
		}
		if am.Recording.FileName != "" {
			rec.FileName = am.Recording.FileName
		}
		if rec != recordingOf(l) {
			l.Recording, changed = &rec, true
		}
	}
	if am.Disposition != "" && l.Disposition != am.Disposition {
		l.Disposition, changed = am.Disposition, true
	}
	return changed
}

// mergePending merges a new amendment into the pending one: what the new one carries
// wins, what it lacks is kept.
func mergePending(cur, ev *call.RecordingEvent) *call.RecordingEvent {
	if ev == nil {
		return cur
	}
	out := *ev
	if cur != nil {
		if out.Recording.Empty() {
			out.Recording = cur.Recording
		}
		if out.Disposition == "" {
			out.Disposition = cur.Disposition
		}
	}
	return &out
}

// amendmentOf is the recording and disposition a call log carries, as an amendment.
func amendmentOf(l *call.Log) *call.RecordingEvent {
	if l == nil {
		return nil
	}
	am := &call.RecordingEvent{Tenant: l.Tenant, CallID: l.CallID, Disposition: l.Disposition}
	if !l.Recording.Empty() {
		am.Recording = *l.Recording
	}
	return am
}

// mergeLater fills in what the written log lacks from a later version of the call
// (e.g. a v2 summary after a record written from the held call.end): the customer's
// number, the call's times and duration — never a different owner, agent, direction
// or status, which the record keeps. The recording and disposition are amendments
// (applyAmendment). It reports whether anything changed.
func mergeLater(dst, later *call.Log) bool {
	changed := false
	switch {
	case dst.CallerNumber == "" && later.CallerNumber != "":
		dst.CallerNumber, dst.CallerRaw, changed = later.CallerNumber, "", true
	case dst.CallerNumber == "" && dst.CallerRaw == "" && later.CallerRaw != "":
		dst.CallerRaw, changed = later.CallerRaw, true // what MyOperator said instead of a number
	}
	if dst.StartedAt.IsZero() && !later.StartedAt.IsZero() {
		dst.StartedAt, changed = later.StartedAt, true
	}
	if dst.EndedAt.IsZero() && !later.EndedAt.IsZero() {
		dst.EndedAt, changed = later.EndedAt, true
	}
	if dst.Duration <= 0 && later.Duration > 0 {
		dst.Duration, changed = later.Duration, true
	}
	return changed
}

func recordingOf(l *call.Log) call.Recording {
	if l.Recording == nil {
		return call.Recording{}
	}
	return *l.Recording
}

// cloneLog copies l deeply enough that merging into the copy leaves l as it was.
func cloneLog(l *call.Log) *call.Log {
	c := *l
	if l.Recording != nil {
		r := *l.Recording
		c.Recording = &r
	}
	if l.Owner != nil {
		o := *l.Owner
		c.Owner = &o
	}
	c.Legs = slices.Clone(l.Legs)
	return &c
}
