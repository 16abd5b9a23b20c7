package callpolicy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callpolicy"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/tenant"
)

var ist = func() *time.Location { l, _ := time.LoadLocation("Asia/Kolkata"); return l }()

// hours: Monday to Friday, 09:30-18:30 IST.
func hours() *tenant.BusinessHours {
	bh := &tenant.BusinessHours{Location: ist}
	for d := time.Monday; d <= time.Friday; d++ {
		bh.Days[d] = []tenant.Range{{From: 9*60 + 30, To: 18*60 + 30}}
	}
	return bh
}

func logAt(dir call.Direction, st call.Status, at time.Time) *call.Log {
	return &call.Log{Tenant: "acme", CallID: "c1", Direction: dir, Status: st, CallerNumber: "+919711636496",
		StartedAt: at, EndedAt: at.Add(30 * time.Second), Owner: &call.Owner{CRMUserID: "1001"}}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	open := time.Date(2026, 11, 30, 11, 0, 0, 0, ist)  // Monday 11:00
	night := time.Date(2026, 11, 30, 22, 0, 0, 0, ist) // Monday 22:00
	all := tenant.CallPolicy{Actions: map[tenant.Category]tenant.Action{
		tenant.CategoryMissed: tenant.ActionLogAndTask, tenant.CategoryVoicemail: tenant.ActionLog,
		tenant.CategoryUnansweredOutgoing: tenant.ActionSkip, tenant.CategoryInternal: tenant.ActionSkip,
		tenant.CategoryOutOfHours: tenant.ActionSkip}, BusinessHours: hours()}
	missedOnly := tenant.CallPolicy{Actions: map[tenant.Category]tenant.Action{tenant.CategoryMissed: tenant.ActionLogAndTask}, BusinessHours: hours()}
	internal := func(l *call.Log) *call.Log { l.Internal = true; return l }
	for _, tc := range []struct {
		name   string
		p      tenant.CallPolicy
		l      *call.Log
		cat    tenant.Category
		action tenant.Action
	}{
		{"no policies: a missed call is logged", tenant.CallPolicy{}, logAt(call.Incoming, call.Missed, open), tenant.CategoryMissed, tenant.ActionLog},
		{"answered calls are always logged", all, logAt(call.Incoming, call.Answered, night), "", tenant.ActionLog},
		{"answered outgoing calls are logged", all, logAt(call.Outgoing, call.Answered, open), "", tenant.ActionLog},
		{"missed in hours", all, logAt(call.Incoming, call.Missed, open), tenant.CategoryMissed, tenant.ActionLogAndTask},
		{"voicemail in hours", all, logAt(call.Incoming, call.Voicemail, open), tenant.CategoryVoicemail, tenant.ActionLog},
		{"missed out of hours: out_of_hours wins when set", all, logAt(call.Incoming, call.Missed, night), tenant.CategoryOutOfHours, tenant.ActionSkip},
		{"voicemail out of hours", all, logAt(call.Incoming, call.Voicemail, night), tenant.CategoryOutOfHours, tenant.ActionSkip},
		{"weekend is out of hours", all, logAt(call.Incoming, call.Missed, time.Date(2026, 12, 5, 11, 0, 0, 0, ist)), tenant.CategoryOutOfHours, tenant.ActionSkip},
		{"out_of_hours unset: a missed call at night is missed", missedOnly, logAt(call.Incoming, call.Missed, night), tenant.CategoryMissed, tenant.ActionLogAndTask},
		{"unanswered outgoing", all, logAt(call.Outgoing, call.Missed, open), tenant.CategoryUnansweredOutgoing, tenant.ActionSkip},
		{"outgoing at night is not out of hours", all, logAt(call.Outgoing, call.Missed, night), tenant.CategoryUnansweredOutgoing, tenant.ActionSkip},
		{"internal wins over missed", all, internal(logAt(call.Incoming, call.Missed, open)), tenant.CategoryInternal, tenant.ActionSkip},
		{"internal answered", all, internal(logAt(call.Incoming, call.Answered, open)), tenant.CategoryInternal, tenant.ActionSkip},
		{"internal wins over out of hours", all, internal(logAt(call.Incoming, call.Missed, night)), tenant.CategoryInternal, tenant.ActionSkip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := callpolicy.Decide(tc.p, tc.l)
			assert.Equal(t, tc.cat, d.Category)
			assert.Equal(t, tc.action, d.Action)
			assert.NotEmpty(t, d.Reason)
		})
	}
}

func TestTaskFor(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 11, 0, 0, 0, ist)
	l := logAt(call.Incoming, call.Missed, at)
	l.Department = "Sales"
	task := callpolicy.TaskFor(tenant.CallPolicy{TaskDue: 30 * time.Minute}, l)
	assert.Equal(t, "Call back +91 97116 36496", task.Subject)
	assert.Equal(t, "1001", task.OwnerID)
	assert.Equal(t, l.EndedAt.Add(30*time.Minute), task.Due)
	assert.Equal(t, "c1", task.Log.CallID)
	assert.Contains(t, task.Description, "Missed call from +91 97116 36496 (Sales) at 2026-11-30 05:30 UTC")

	l = logAt(call.Outgoing, call.Missed, at)
	l.EndedAt = time.Time{}
	task = callpolicy.TaskFor(tenant.CallPolicy{}, l)
	assert.Equal(t, at.Add(tenant.DefaultTaskDue), task.Due, "no end time: due after the start")
	assert.Contains(t, task.Description, "An outgoing call to +91 97116 36496 was not answered")
}

// fakeTasker is an in-memory CRM task API: lost answers store the task and fail.
type fakeTasker struct {
	tasks   map[string]string // call id → task id
	creates int
	finds   int
	next    []error // errors of the next creates (crm.Error with Unknown: stored, answer lost)
	findErr error
}

func (f *fakeTasker) CreateTask(_ context.Context, t crm.Task) (string, error) {
	f.creates++
	var err error
	if len(f.next) > 0 {
		err, f.next = f.next[0], f.next[1:]
	}
	if err != nil && !crm.OutcomeUnknown(err) {
		return "", err
	}
	if f.tasks == nil {
		f.tasks = map[string]string{}
	}
	id := "task-" + t.Log.CallID
	f.tasks[t.Log.CallID] = id
	return id, err
}

func (f *fakeTasker) FindTask(_ context.Context, t crm.Task) (string, bool, error) {
	f.finds++
	if f.findErr != nil {
		return "", false, f.findErr
	}
	id, ok := f.tasks[t.Log.CallID]
	return id, ok, nil
}

func TestEnsureCreatesOnce(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	task := crm.Task{Log: call.Log{CallID: "c1"}, OwnerID: "1001", Subject: "Call back"}
	lost := &crm.Error{Op: "create task", Unknown: true}
	refused := &crm.Error{Op: "create task", Status: 400, Permanent: true}

	type step struct {
		advance time.Duration
		outcome string
		err     error
	}
	for _, tc := range []struct {
		name            string
		next            []error
		findErr         error
		steps           []step
		creates, finds  int
		final           callpolicy.TaskStatus
		tasksInTheCRMOK int
	}{
		{name: "created, then redelivered", steps: []step{{0, callpolicy.TaskWritten, nil}, {0, callpolicy.TaskExists, nil}},
			creates: 1, final: callpolicy.TaskCreated, tasksInTheCRMOK: 1},
		{name: "answer lost: looked up after settling, adopted", next: []error{lost},
			steps:   []step{{0, "", callpolicy.ErrTaskOutcomeUnknown}, {time.Second, "", callpolicy.ErrTaskSettling}, {15 * time.Second, callpolicy.TaskAdopted, nil}, {0, callpolicy.TaskExists, nil}},
			creates: 1, finds: 1, final: callpolicy.TaskCreated, tasksInTheCRMOK: 1},
		{name: "lookup fails: nothing created", next: []error{lost}, findErr: &crm.Error{Op: "find", Status: 500},
			steps:   []step{{0, "", callpolicy.ErrTaskOutcomeUnknown}, {15 * time.Second, "", callpolicy.ErrTaskOutcomeUnknown}},
			creates: 1, finds: 1, final: callpolicy.TaskUnknown, tasksInTheCRMOK: 1},
		{name: "refused: created on a later attempt", next: []error{refused},
			steps: []step{{0, "", refused}, {0, callpolicy.TaskWritten, nil}}, creates: 2, final: callpolicy.TaskCreated, tasksInTheCRMOK: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := now
			f := &fakeTasker{next: tc.next, findErr: tc.findErr}
			s := callpolicy.Tasks{Settle: 10 * time.Second, Now: func() time.Time { return now }}
			var st callpolicy.TaskState
			saves := 0
			for i, step := range tc.steps {
				now = now.Add(step.advance)
				out, err := s.Ensure(context.Background(), f, &st, task, func(context.Context) error { saves++; return nil })
				if step.err != nil {
					require.Error(t, err, "step %d", i)
					assert.True(t, errors.Is(err, step.err), "step %d: %v", i, err)
				} else {
					require.NoError(t, err, "step %d", i)
				}
				assert.Equal(t, step.outcome, out, "step %d", i)
			}
			assert.Equal(t, tc.creates, f.creates)
			assert.Equal(t, tc.finds, f.finds)
			assert.Equal(t, tc.final, st.Status)
			assert.Len(t, f.tasks, tc.tasksInTheCRMOK)
			assert.Positive(t, saves)
		})
	}
}

func TestEnsureCreatingMeansUnknown(t *testing.T) {
	t.Parallel()
	// A worker died between sending the create and keeping its result: the next one
	// looks the task up (after the settle delay) instead of creating a second.
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	f := &fakeTasker{tasks: map[string]string{"c1": "task-c1"}}
	st := callpolicy.TaskState{Status: callpolicy.TaskCreating, Since: now.Add(-crm.SettleDelay - time.Second)}
	out, err := callpolicy.Tasks{Now: func() time.Time { return now }}.Ensure(context.Background(), f,
		&st, crm.Task{Log: call.Log{CallID: "c1"}}, func(context.Context) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, callpolicy.TaskAdopted, out)
	assert.Equal(t, 0, f.creates)
	assert.Equal(t, "task-c1", st.ID)
}

func TestEnsureSaveFailsBeforeCreate(t *testing.T) {
	t.Parallel()
	f := &fakeTasker{}
	var st callpolicy.TaskState
	_, err := callpolicy.Tasks{}.Ensure(context.Background(), f, &st, crm.Task{Log: call.Log{CallID: "c1"}},
		func(context.Context) error { return errors.New("redis down") })
	require.Error(t, err)
	assert.Equal(t, 0, f.creates, "no create without its intent kept")
}
