package callpolicy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/calltrack/calltrack/internal/crm"
)

// TaskStatus is where a call's follow-up task stands.
type TaskStatus string

// Task statuses, kept with the call's state (the writer's call-state store).
const (
	TaskNone     TaskStatus = ""         // no task created (or the CRM said no)
	TaskCreating TaskStatus = "creating" // a create is being sent; met again, its worker died: unknown
	TaskUnknown  TaskStatus = "unknown"  // a create got no usable answer: look it up before creating
	TaskCreated  TaskStatus = "created"  // the task exists: ID
)

// TaskState is what is kept of a call's task, beside the call's record state.
type TaskState struct {
	Status TaskStatus `json:"status,omitempty"`
	ID     string     `json:"id,omitempty"`
	Since  time.Time  `json:"since,omitzero"` // when the status became creating or unknown
}

// Outcomes of Ensure.
const (
	TaskWritten = "task_created" // created now
	TaskAdopted = "task_adopted" // a create whose answer was lost had created it: kept
	TaskExists  = "task_exists"  // created before: nothing done
)

// Errors of Ensure. CRM refusals come back as *crm.Error.
var (
	// ErrTaskOutcomeUnknown: a task create may or may not have created the task;
	// nothing is created for the call until the CRM has been asked.
	ErrTaskOutcomeUnknown = errors.New("callpolicy: outcome of a task create is unknown")
	// ErrTaskSettling: an unknown outcome too recent to ask the CRM about (its search
	// may lag its writes); try again once the settle delay has passed.
	ErrTaskSettling = fmt.Errorf("%w: waiting for the CRM to settle", ErrTaskOutcomeUnknown)
)

// Tasks makes a call's follow-up task exist once, with the state machine the writer
// uses for call records: the intent is saved before the create, an unknown outcome
// is settled by a lookup, and only a lookup that found nothing allows a new create.
// The caller holds the call's lease while Ensure runs, so one call's task is never
// handled twice at once.
type Tasks struct {
	Settle time.Duration    // how old an unknown outcome must be before a lookup may answer "absent"; default crm.SettleDelay
	Now    func() time.Time // default time.Now
}

// Ensure creates task in c unless st says it exists; save persists st (under the
// caller's lease) and is called before every create and after every change.
func (s Tasks) Ensure(ctx context.Context, c crm.Tasker, st *TaskState, task crm.Task, save func(context.Context) error) (string, error) {
	if st.Status == TaskCreated {
		return TaskExists, nil
	}
	if st.Status == TaskCreating {
		// Met again under a new lease: the worker that sent it died before it knew.
		st.Status = TaskUnknown
	}
	if st.Status == TaskUnknown {
		if age := s.now().Sub(st.Since); age < s.settle() {
			return "", fmt.Errorf("%w: task create of call %s answered nothing %s ago; asking the CRM after %s",
				ErrTaskSettling, task.Log.CallID, age.Round(time.Millisecond), s.settle())
		}
		id, found, err := c.FindTask(ctx, task)
		if err != nil {
			return "", fmt.Errorf("%w: looking up the task of call %s: %w", ErrTaskOutcomeUnknown, task.Log.CallID, err)
		}
		if found {
			*st = TaskState{Status: TaskCreated, ID: id}
			if err := save(ctx); err != nil {
				return "", err
			}
			return TaskAdopted, nil
		}
		*st = TaskState{}
	}
	*st = TaskState{Status: TaskCreating, Since: s.now()}
	if err := save(ctx); err != nil {
		return "", err
	}
	id, err := c.CreateTask(ctx, task)
	switch {
	case err == nil && id != "":
		*st = TaskState{Status: TaskCreated, ID: id}
		if err := save(ctx); err != nil {
			// Created but not recorded: "creating" stays, and the next attempt looks it up.
			return "", err
		}
		return TaskWritten, nil
	case err == nil || crm.OutcomeUnknown(err) || !isCRMError(err):
		// No id, no answer, or ended without the adapter's word (a deadline): it may exist.
		*st = TaskState{Status: TaskUnknown, Since: s.now()}
		_ = save(ctx) // if this is lost too, "creating" is read as unknown next time
		if err == nil {
			err = errors.New("the CRM answered without a task id")
		}
		return "", fmt.Errorf("%w: %w", ErrTaskOutcomeUnknown, err)
	default:
		// The CRM answered no: nothing was created.
		*st = TaskState{}
		_ = save(ctx)
		return "", err
	}
}

func isCRMError(err error) bool {
	_, ok := errors.AsType[*crm.Error](err)
	return ok
}

func (s Tasks) settle() time.Duration {
	if s.Settle > 0 {
		return s.Settle
	}
	return crm.SettleDelay
}

func (s Tasks) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
