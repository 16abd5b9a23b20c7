package console

import (
	"fmt"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/callpolicy"
	"github.com/calltrack/calltrack/internal/ingest"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/usermatch"
)

// What the console shows instead of codes.

// statusWords names a call's status as the Calls page shows it.
func statusWords(s string) string {
	switch s {
	case trace.StatusWritten:
		return "written"
	case trace.StatusUnattributed:
		return "unattributed"
	case trace.StatusRetrying:
		return "retrying"
	case trace.StatusDeadLettered:
		return "dead-lettered"
	case callpolicy.StatusSkipped:
		return "skipped by policy"
	case trace.StatusReceived, trace.StatusPublished:
		return "waiting for a writer"
	case "":
		return "ringing (no call log yet)"
	}
	return s
}

// reasonWords says why a user is unmatched, or why a call was dead-lettered.
func reasonWords(reason string) string {
	switch reason {
	case usermatch.ReasonNoMatch:
		return "no user on the other side has this email"
	case usermatch.ReasonEmailCaseDiffers:
		return "email differs only in case"
	case usermatch.ReasonInactive:
		return "deactivated"
	case usermatch.ReasonDuplicateEmail:
		return "several users share this email"
	case usermatch.ReasonNoEmail:
		return "has no email"
	case usermatch.ReasonRoleFiltered:
		return "role not among the synced roles"
	case usermatch.ReasonCounterpartOff:
		return "the only match is deactivated"
	case usermatch.ReasonCounterpartRole:
		return "the only match has a role that is not synced"
	case usermatch.ReasonDuplicatePhone:
		return "several users share this phone number"
	case usermatch.ReasonNoPhone:
		return "has no phone number"
	case usermatch.ReasonDuplicateField:
		return "several CRM users hold this id in the match field"
	case usermatch.ReasonNoField:
		return "the match field is empty"
	case usermatch.ReasonMappingConflict:
		return "its email, phone or uuid is already another agent's mapping's"
	// Dead-letter reasons.
	case "crm_rejected":
		return "the CRM refused the call (an owner or field it does not accept, or a revoked credential)"
	case "retries_exhausted":
		return "the CRM kept failing through every retry"
	case "undecodable":
		return "the event could not be read"
	case "unknown_tenant":
		return "the tenant was not configured when it was written"
	case "(none)", "":
		return "no reason recorded"
	}
	return reason
}

// unmatchedWords is an unmatched user's reason with the near match, e.g. "email
// differs only in case: Priya@Example.com vs priya@example.com".
func unmatchedWords(u usermatch.Unmatched) string {
	w := reasonWords(u.Reason)
	if u.Counterpart != nil && u.Counterpart.Email != "" && u.Email != "" {
		w += ": " + u.Email + " vs " + u.Counterpart.Email
	}
	return w
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// when is a time as the console prints it (UTC, to the second).
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func durationWords(seconds int) string {
	if seconds <= 0 {
		return "0s"
	}
	d := time.Duration(seconds) * time.Second
	if d < time.Minute {
		return fmt.Sprintf("%ds", seconds)
	}
	return fmt.Sprintf("%dm %02ds", seconds/60, seconds%60)
}

// stageWords says what a trace stage means, for the call's timeline ("" for a stage
// the console has no words for: its name and detail still show).
func stageWords(stage, kind string) string {
	switch stage {
	case trace.StatusReceived:
		if kind == "live" {
			return "MyOperator reported the call ringing or answered (inCall)"
		}
		return "calltrack took the webhook from MyOperator"
	case trace.StatusPublished:
		return "kept on Kafka for the CRM writer (the webhook was answered after this)"
	case trace.StatusWritten:
		return "the CRM writer created the call in the CRM"
	case trace.StatusUnattributed:
		return "the agent has no mapping to a CRM user: the call is kept until one is added"
	case trace.StatusRetrying:
		return "the CRM failed; calltrack tries again"
	case trace.StatusDeadLettered:
		return "the writer gave up; the call is on the dead-letter topic for a replay"
	case "replayed":
		return "sent to the writer again by a replay"
	case ingest.StageClickToCall:
		return "the call was placed by a click-to-call request: its reference is the one the API answered"
	case ingest.StageAgentFieldMalformed:
		return "MyOperator sent the call's agent malformed: read without it, so the call may have gone to the fallback owner"
	case "duplicate_ignored":
		return "a repeat of a delivery already taken: nothing new written"
	case trace.StageAlreadyWritten:
		return "the CRM already had this call: not written twice"
	case trace.StageReattributed:
		return "an agent mapping appeared: the kept call went to the writer"
	case trace.StageRecordingAttached:
		return "the recording link was added to the CRM record"
	case trace.StageDispositionAdded:
		return "the agent's disposition was added to the CRM record"
	case trace.StageAmended:
		return "a later report of the call added to the CRM record (same record, same owner)"
	case trace.StageAmendmentKept:
		return "a recording or disposition came before the call itself: kept and written with it"
	case trace.StageOutcomeUnknown:
		return "the CRM gave no usable answer to the create: calltrack looks the call up in the CRM before any new create"
	case trace.StageAdopted:
		return "the CRM had stored the call although its answer was lost: that record is kept, not created twice"
	case callpolicy.StageSkipped:
		return "the tenant's call policy writes nothing to the CRM for such calls"
	case callpolicy.StageTaskCreated:
		return "the follow-up task was created in the CRM for the call's owner"
	case callpolicy.StageTaskAdopted:
		return "the CRM had stored the follow-up task although its answer was lost: kept, not created twice"
	case callpolicy.StageTaskUnknown:
		return "the CRM gave no usable answer to the task's create: it is looked up before any new create"
	case "provisional_held":
		return "call.end kept, waiting for the call's summary"
	case "provisional_dropped":
		return "the call's summary came: the early call.end was not needed"
	}
	return ""
}

// plural is "1 user", "2 users".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// spanWords is a setting's duration as a person writes it: "6h", "15m", "1h30m".
func spanWords(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
