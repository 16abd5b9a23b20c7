package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/tenant"
)

// zohoTasks are the Zoho sandbox's tasks of a call (their Subject ends " [<call id>]").
func zohoTasks(zs *sandbox.Zoho, callID string) []sandbox.ZohoTask {
	var out []sandbox.ZohoTask
	for _, k := range zs.Tasks() {
		if strings.HasSuffix(k.Subject, " ["+callID+"]") {
			out = append(out, k)
		}
	}
	return out
}

// A Zoho tenant's missed call under log_and_task: one Calls record (Missed, no
// duration) and one task "Call back …" for the call's owner, related to the caller's
// contact like the record — also when the call log is delivered again.
func TestZohoMissedCallLogAndTask(t *testing.T) {
	const owner = "5725767000000411001"
	s, zs := newZohoStackWith(t, func(tn *tenant.Tenant, _ *config.Config) {
		tn.Calls = tenant.CallPolicy{TaskDue: tenant.DefaultTaskDue,
			Actions: map[tenant.Category]tenant.Action{tenant.CategoryMissed: tenant.ActionLogAndTask}}
	})
	s.mapAgent(sumit.id, owner, sumit.email)
	contact := zs.AddContact(sandbox.ZohoPerson{FirstName: "Meera", LastName: "Customer", Mobile: "9711636496"})

	spec := callSpec{uid: newUID(), status: 2, legs: []leg{{agents: []agent{sumit}}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)

	waitFor(t, "the call's Zoho record", func() bool { return len(zohoRecords(zs, spec.uid)) == 1 })
	rec := zohoRecords(zs, spec.uid)[0]
	assert.Equal(t, owner, rec.Owner.ID, "the record belongs to the mapped Zoho user")
	assert.Equal(t, "Missed", rec.CallType)
	assert.Empty(t, rec.CallDuration, "no duration for a missed call")
	require.NotNil(t, rec.WhoID)
	assert.Equal(t, contact, rec.WhoID.ID)

	waitFor(t, "the call's follow-up task", func() bool { return len(zohoTasks(zs, spec.uid)) == 1 })
	task := zohoTasks(zs, spec.uid)[0]
	assert.Equal(t, owner, task.Owner.ID, "the task belongs to the call's owner")
	assert.Equal(t, "Call back +91 97116 36496 ["+spec.uid+"]", task.Subject)
	assert.Equal(t, "Not Started", task.Status)
	require.NotNil(t, task.WhoID, "related to the caller's contact")
	assert.Equal(t, contact, task.WhoID.ID, "the same contact as the call record")
	_, err := time.Parse(time.DateOnly, task.DueDate)
	assert.NoError(t, err, "Due_Date is a date: %q", task.DueDate)
	s.waitStatus(spec.uid, "written", within)
	s.waitStage(spec.uid, "task_created", within)

	// The call log delivered twice more (a replay): still one record and one task.
	msgs := s.readTopic(s.env.Topics.Log, 1, func(m kafka.Message) bool { return kafkabus.Header(m, kafkabus.HeaderCallID) == spec.uid })
	require.Len(t, msgs, 1)
	replay := kafka.Message{Topic: s.env.Topics.Log, Key: msgs[0].Key, Value: msgs[0].Value, Headers: msgs[0].Headers}
	require.NoError(t, s.app.Producer.Publish(t.Context(), replay, replay))
	waitDuplicates(t, s, 2)
	assert.Len(t, zohoRecords(zs, spec.uid), 1, "Zoho Calls records of the call")
	assert.Len(t, zohoTasks(zs, spec.uid), 1, "Zoho tasks of the call")
}
