// Package callpolicy decides, per tenant, what becomes of a call in the CRM: which
// policy category it falls in (missed, voicemail, unanswered outgoing, internal, out
// of hours), whether it is logged, logged with a follow-up task, or skipped; what the
// task says and when it is due; and who owns a call no mapped agent owns (a
// department's fallback owner). It also creates a call's task once (Tasks.Ensure)
// over interfaces it owns, so every decision is table-tested with in-memory fakes.
package callpolicy

import (
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
	"github.com/calltrack/calltrack/internal/tenant"
)

// Decision is what a tenant's policy makes of one call.
type Decision struct {
	// Category is the policy category; "" for an answered customer call, which no
	// policy covers (it is always logged).
	Category tenant.Category
	Action   tenant.Action
	// Reason says in words why, for the call's trace: "missed call: policy log_and_task".
	Reason string
}

// Skip reports whether nothing is to be written.
func (d Decision) Skip() bool { return d.Action == tenant.ActionSkip }

// Task reports whether a follow-up task is to be created.
func (d Decision) Task() bool { return d.Action == tenant.ActionLogAndTask }

// Decide applies p to l. Precedence (first that applies):
//  1. internal — an internal call is never a customer follow-up, whatever its status;
//  2. out_of_hours — an unanswered incoming call outside business hours, only when
//     the tenant set out_of_hours (otherwise such a call falls to missed/voicemail, so
//     setting missed alone covers missed calls at any hour);
//  3. missed, voicemail (incoming), unanswered_outgoing (outgoing, not answered);
//  4. anything else (an answered customer call): log.
func Decide(p tenant.CallPolicy, l *call.Log) Decision {
	cat := Category(p, l)
	if cat == "" {
		return Decision{Action: tenant.ActionLog, Reason: "answered call: always logged"}
	}
	a, set := p.Action(cat)
	how := "policy " + string(a)
	if !set {
		how = "no policy set: " + string(a)
	}
	return Decision{Category: cat, Action: a, Reason: strings.ReplaceAll(string(cat), "_", " ") + " call: " + how}
}

// Category is the policy category of l under p ("" for an answered customer call).
func Category(p tenant.CallPolicy, l *call.Log) tenant.Category {
	if l.Internal {
		return tenant.CategoryInternal
	}
	if l.Direction == call.Outgoing {
		if l.Status != call.Answered {
			return tenant.CategoryUnansweredOutgoing
		}
		return ""
	}
	if l.Status == call.Answered {
		return ""
	}
	if _, set := p.Action(tenant.CategoryOutOfHours); set && p.BusinessHours != nil {
		if at := callTime(l); !at.IsZero() && !p.BusinessHours.Open(at) {
			return tenant.CategoryOutOfHours
		}
	}
	if l.Status == call.Voicemail {
		return tenant.CategoryVoicemail
	}
	return tenant.CategoryMissed
}

// callTime is when the call began (else ended, else was received).
func callTime(l *call.Log) time.Time {
	for _, t := range []time.Time{l.StartedAt, l.EndedAt, l.ReceivedAt} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// TaskFor is the follow-up task of l for its owner: "Call back <number>", due
// p.TaskDue after the call ended (or began, or was received).
func TaskFor(p tenant.CallPolicy, l *call.Log) crm.Task {
	end := l.EndedAt
	if end.IsZero() {
		end = callTime(l)
	}
	due := p.TaskDue
	if due <= 0 {
		due = tenant.DefaultTaskDue
	}
	t := crm.Task{Log: *l, Subject: "Call back " + phone.Readable(l.CallerNumber), Due: end.Add(due)}
	if l.Owner != nil {
		t.OwnerID = l.Owner.CRMUserID
	}
	var what string
	switch {
	case l.Direction == call.Outgoing:
		what = "An outgoing call to " + phone.Readable(l.CallerNumber) + " was not answered"
	case l.Status == call.Voicemail:
		what = phone.Readable(l.CallerNumber) + " left a voicemail"
	default:
		what = "Missed call from " + phone.Readable(l.CallerNumber)
	}
	if l.Department != "" {
		what += " (" + l.Department + ")"
	}
	if at := callTime(l); !at.IsZero() {
		what += " at " + at.UTC().Format("2006-01-02 15:04 UTC")
	}
	t.Description = what + "."
	return t
}
