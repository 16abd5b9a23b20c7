package trace

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Render writes the trace as a person reads it (`calltrack trace`): status, owner, CRM
// record, then each stage with its time (UTC), the time since the stage before, its
// kind and detail, the total time to written, and what to do next when the call is stuck.
func Render(w io.Writer, t *Trace) {
	fmt.Fprintf(w, "call %s of tenant %s", t.CallID, t.Tenant)
	if t.LogID != "" && t.LogID != t.CallID {
		fmt.Fprintf(w, " (afterCall log id %s)", t.LogID)
	}
	fmt.Fprintln(w)
	row := func(k, v string) { fmt.Fprintf(w, "%-8s %s\n", k, v) }
	row("status", t.Status)
	if t.Owner != nil {
		row("owner", "CRM user "+t.Owner.CRMUserID)
	} else {
		row("owner", "none")
	}
	if t.CRM != nil {
		row("record", "CRM record "+t.CRM.RecordID)
	}
	if t.Agent != "" {
		row("agent", "MyOperator user "+t.Agent)
	}
	if len(t.Stages) == 0 {
		fmt.Fprintln(w, "no stages recorded")
	} else {
		fmt.Fprintln(w, "stages (UTC; + is the time since the stage before):")
		first, prev := t.Stages[0].At, t.Stages[0].At
		stage, kind := 0, 0
		for _, s := range t.Stages {
			stage, kind = max(stage, len(s.Stage)), max(kind, len(s.Kind))
		}
		written := false
		for _, s := range t.Stages {
			detail := s.Detail
			if s.Stage == "replayed" && s.Kind == "log" && written {
				// The writer writes a call log once: a replay of a written call is skipped.
				detail += " (already written: skipped)"
			}
			written = written || (s.Stage == StatusWritten && s.Kind == "log")
			line := fmt.Sprintf("  %s  %-9s %-*s  %-*s  %s", s.At.UTC().Format("2006-01-02 15:04:05.000"), "+"+Since(prev, s.At),
				stage, s.Stage, kind, s.Kind, detail)
			fmt.Fprintln(w, strings.TrimRight(line, " "))
			prev = s.At
		}
		if last := t.Stages[len(t.Stages)-1]; t.Status == StatusWritten && len(t.Stages) > 1 {
			for i := len(t.Stages) - 1; i >= 0; i-- {
				if t.Stages[i].Stage == StatusWritten {
					last = t.Stages[i]
					break
				}
			}
			fmt.Fprintf(w, "written %s after the first stage\n", Since(first, last.At))
		}
	}
	if hint := nextStep(t); hint != "" {
		fmt.Fprintf(w, "next: %s\n", hint)
	}
}

// nextStep says what an on-call engineer can do about a call that is not written.
func nextStep(t *Trace) string {
	switch t.Status {
	case StatusDeadLettered:
		return fmt.Sprintf("fix the cause (last stage), then `calltrack replay --topic dlq --call-id %s --tenant %s`", t.CallID, t.Tenant)
	case StatusUnattributed:
		return "map the agent to a CRM user (admin API or user sync); the call is written when the mapping appears"
	case StatusRetrying:
		return "the writer retries it on its own; see `calltrack dlq summary` if retries run out"
	case StatusReceived, StatusPublished:
		return "waiting for a writer (`calltrack work`); check the writers' consumer lag"
	}
	return ""
}

// Since is d = to - from as a person reads it: 12ms, 1.2s, 3m4s, 2h5m.
func Since(from, to time.Time) string {
	d := to.Sub(from)
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
