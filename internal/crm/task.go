package crm

import (
	"context"
	"time"

	"github.com/calltrack/calltrack/internal/call"
)

// Task is a follow-up task calltrack asks a CRM to create for a call (a call policy's
// log_and_task): owned by OwnerID, related to the call's lead or contact (which the
// adapter resolves from Log.CallerNumber as it does for the call record), due at Due.
type Task struct {
	Log         call.Log // the call followed up: its caller, and its call id (on the task, to find it again)
	OwnerID     string   // CRM user id the task is assigned to
	Subject     string   // e.g. "Call back +91 97116 36496"
	Description string   // what happened; the adapter adds the line "Call ID: <id>"
	Due         time.Time
}

// Tasker creates follow-up tasks and finds them again. Neither Kylas nor Zoho has an
// upsert for tasks (docs/crm-contracts.md), so, as with call records, a create whose
// outcome is unknown (ErrOutcomeUnknown) must be settled by FindTask before any
// second create: only found=false with a nil error allows one. Ask only after the
// create has returned, and expect a search to lag its writes (FindSettled).
type Tasker interface {
	CreateTask(ctx context.Context, t Task) (taskID string, err error)
	FindTask(ctx context.Context, t Task) (taskID string, found bool, err error)
}

// TaskCallIDLine is the description line that names the call a task follows up, by
// which FindTask recognises calltrack's task (and a CRM user finds the call in calltrack).
func TaskCallIDLine(callID string) string { return "Call ID: " + callID }
