package crmtest

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
)

// TaskRecord is a follow-up task as the CRM stored it, in CRM-neutral terms.
type TaskRecord struct {
	ID, OwnerID, Subject string
	CallID               string // from the description's "Call ID:" line
	RelatedID            string // the lead/contact it is related to; "" for none
	RelatedType          string // "contact" or "lead"
	Due                  time.Time
	DueDateOnly          bool // the CRM keeps the due date without a time (Zoho's Due_Date)
}

// TaskHarness runs the follow-up task cases of an adapter that is a crm.Tasker.
type TaskHarness struct {
	Harness
	// Tasks returns every task the backend holds, in creation order.
	Tasks func(t *testing.T, b Backend) []TaskRecord
}

// NewTask returns the follow-up task of call c, due two hours after it ended.
func NewTask(c crm.Call) crm.Task {
	return crm.Task{Log: c.Log, OwnerID: c.OwnerID, Subject: "Call back " + c.Log.CallerNumber,
		Description: "Missed call.", Due: c.Log.EndedAt.Add(2 * time.Hour)}
}

// RunTasks runs the crm.Tasker cases against h's adapter and backend.
func RunTasks(t *testing.T, h TaskHarness) {
	require.NotNil(t, h.Setup, "Harness.Setup")
	require.NotNil(t, h.Tasks, "TaskHarness.Tasks")
	require.Positive(t, h.Settle, "Harness.Settle")
	h.Harness = h.withOwners()
	for _, c := range []struct {
		name string
		run  func(t *testing.T, h TaskHarness)
	}{
		{"task: owned by the call's owner, related to the caller's contact, due, found again", testTaskCreated},
		{"task: related to the caller's lead", testTaskLead},
		{"task: another call's task is not ours; absent only after the settle time", testTaskAbsent},
		{"task: a lost response is an unknown outcome, and the task is found", testTaskLostResponse},
		{"task: errors classified", testTaskErrors},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, h)
		})
	}
}

func tasker(t *testing.T, a crm.Adapter) crm.Tasker {
	t.Helper()
	tk, ok := a.(crm.Tasker)
	require.True(t, ok, "%T is not a crm.Tasker", a)
	return tk
}

func onlyTask(t *testing.T, h TaskHarness, b Backend) TaskRecord {
	t.Helper()
	ts := h.Tasks(t, b)
	require.Len(t, ts, 1, "tasks: %+v", ts)
	return ts[0]
}

func checkDue(t *testing.T, want time.Time, got TaskRecord) {
	t.Helper()
	if got.DueDateOnly {
		assert.Equal(t, want.Format(time.DateOnly), got.Due.Format(time.DateOnly), "due date")
		return
	}
	assert.WithinDuration(t, want, got.Due, time.Second, "due")
}

func testTaskCreated(t *testing.T, h TaskHarness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	contact := b.AddContact(t, phoneA)
	task := NewTask(NewCall("task-1", phoneA, h.Owners[1], call.Incoming, call.Missed))
	id, err := tasker(t, a).CreateTask(ctx, task)
	require.NoError(t, err)
	require.NotEmpty(t, id)
	got := onlyTask(t, h, b)
	assert.Equal(t, id, got.ID)
	assert.Equal(t, h.Owners[1], got.OwnerID)
	assert.Equal(t, "task-1", got.CallID)
	assert.Contains(t, got.Subject, "Call back")
	assert.Equal(t, contact, got.RelatedID)
	assert.Equal(t, "contact", got.RelatedType)
	checkDue(t, task.Due, got)

	found, ok, err := tasker(t, a).FindTask(ctx, task)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, id, found)
}

func testTaskLead(t *testing.T, h TaskHarness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	lead := b.AddLead(t, phoneB)
	_, err := tasker(t, a).CreateTask(ctx, NewTask(NewCall("task-lead", phoneB, h.Owners[0], call.Incoming, call.Voicemail)))
	require.NoError(t, err)
	got := onlyTask(t, h, b)
	assert.Equal(t, lead, got.RelatedID)
	assert.Equal(t, "lead", got.RelatedType)
	assert.Equal(t, h.Owners[0], got.OwnerID)
}

func testTaskAbsent(t *testing.T, h TaskHarness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	b.AddContact(t, phoneA)
	b.SearchLag(t, h.Settle/2)
	_, err := tasker(t, a).CreateTask(ctx, NewTask(NewCall("task-other", phoneA, h.Owners[0], call.Incoming, call.Missed)))
	require.NoError(t, err)
	begun := time.Now()
	_, found, err := tasker(t, a).FindTask(ctx, NewTask(NewCall("task-mine", phoneA, h.Owners[0], call.Incoming, call.Missed)))
	require.NoError(t, err)
	assert.False(t, found, "another call's task must not be taken for this one")
	assert.GreaterOrEqual(t, time.Since(begun), h.Settle, "absent must come from a search made after the settle time")
}

func testTaskLostResponse(t *testing.T, h TaskHarness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	b.AddLead(t, phoneC)
	task := NewTask(NewCall("task-lost", phoneC, h.Owners[1], call.Incoming, call.Missed))
	tk := tasker(t, a)
	// The lookups a create needs (picklists, the caller) are made before the fault.
	_, _, err := tk.FindTask(ctx, NewTask(NewCall("warm-up", phoneC, h.Owners[1], call.Incoming, call.Missed)))
	require.NoError(t, err)
	b.SearchLag(t, h.Settle/2)
	b.LoseResponses(t, 1)
	_, err = tk.CreateTask(ctx, task)
	require.Error(t, err)
	assert.True(t, crm.OutcomeUnknown(err), "a create without an answer has an unknown outcome: %v", err)
	b.LoseResponses(t, 0)
	require.Len(t, h.Tasks(t, b), 1, "the sandbox applied the create")
	id, found, err := tk.FindTask(ctx, task)
	require.NoError(t, err)
	require.True(t, found, "the task the lost create made must be found")
	assert.Equal(t, onlyTask(t, h, b).ID, id)
}

func testTaskErrors(t *testing.T, h TaskHarness) {
	for _, tc := range []struct {
		status             int
		permanent, unknown bool
	}{
		{http.StatusBadRequest, true, false},
		{http.StatusTooManyRequests, false, false},
		{http.StatusServiceUnavailable, false, false},
		{http.StatusInternalServerError, false, true},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			a, b := h.Setup(t, Options{})
			b.AddContact(t, phoneA)
			tk := tasker(t, a)
			_, _, err := tk.FindTask(ctx, NewTask(NewCall("warm-up", phoneA, h.Owners[0], call.Incoming, call.Missed)))
			require.NoError(t, err)
			b.Fail(t, tc.status)
			_, err = tk.CreateTask(ctx, NewTask(NewCall("task-err", phoneA, h.Owners[0], call.Incoming, call.Missed)))
			require.Error(t, err)
			assert.Equal(t, tc.permanent, crm.IsPermanent(err), "permanent: %v", err)
			assert.Equal(t, tc.unknown, crm.OutcomeUnknown(err), "unknown: %v", err)
			assert.Equal(t, tc.status, crm.HTTPStatus(err))
			_, _, err = tk.FindTask(ctx, NewTask(NewCall("task-err", phoneA, h.Owners[0], call.Incoming, call.Missed)))
			require.Error(t, err, "a failing search is an error, never absent")
		})
	}
}
