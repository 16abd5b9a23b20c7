package e2e

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/tenant"
)

var taskCallIDLine = regexp.MustCompile(`(?m)^Call ID: (\S+)$`)

// tasks returns the sandbox CRM's tasks of one call.
func (s *stack) tasks(callID string) []sandbox.KylasTask {
	var out []sandbox.KylasTask
	for _, k := range s.kylas.Tasks() {
		if m := taskCallIDLine.FindStringSubmatch(k.Description); m != nil && m[1] == callID {
			out = append(out, k)
		}
	}
	return out
}

// Call policies end to end: a missed call under log_and_task gives one call record
// and one task for its owner, also when its call log is delivered again; a missed
// call of an unmapped agent goes to its department's fallback owner; an unanswered
// outgoing call under skip leaves nothing in the CRM.
func TestCallPolicies(t *testing.T) {
	s := newStack(t, stackOpts{calls: tenant.CallPolicy{TaskDue: tenant.DefaultTaskDue,
		Actions: map[tenant.Category]tenant.Action{tenant.CategoryMissed: tenant.ActionLogAndTask,
			tenant.CategoryUnansweredOutgoing: tenant.ActionSkip},
		Departments: map[string]string{"sales": "1002"}}})
	s.mapAgent(sumit.id, "1001", sumit.email)

	t.Run("missed call, log_and_task: one record and one task for its owner, redelivered or not", func(t *testing.T) {
		spec := callSpec{uid: newUID(), status: 2, legs: []leg{{agents: []agent{sumit}}}}
		require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
		recs := s.waitRecords(spec.uid, 1, within)
		assert.EqualValues(t, 1001, recs[0].Owner.ID)
		waitFor(t, "the call's follow-up task", func() bool { return len(s.tasks(spec.uid)) == 1 })
		task := s.tasks(spec.uid)[0]
		assert.EqualValues(t, 1001, task.AssignedTo, "the task belongs to the call's owner")
		assert.Equal(t, "Call back +91 97116 36496", task.Name)
		require.Len(t, task.Relation, 1, "related to the caller")
		require.Len(t, recs[0].RelatedTo, 1)
		assert.Equal(t, recs[0].RelatedTo[0].ID, task.Relation[0].TargetEntityID, "the same lead/contact as the call record")

		// The call log delivered twice more (a replay): still one of each.
		msgs := s.readTopic(s.env.Topics.Log, 1, func(m kafka.Message) bool { return kafkabus.Header(m, kafkabus.HeaderCallID) == spec.uid })
		require.Len(t, msgs, 1)
		replay := kafka.Message{Topic: s.env.Topics.Log, Key: msgs[0].Key, Value: msgs[0].Value, Headers: msgs[0].Headers}
		require.NoError(t, s.app.Producer.Publish(t.Context(), replay, replay))
		waitDuplicates(t, s, 2)
		assert.Len(t, s.records(spec.uid), 1, "CRM records of the call")
		assert.Len(t, s.tasks(spec.uid), 1, "tasks of the call")
		s.waitStage(spec.uid, "task_created", within)
	})

	t.Run("missed call of an unmapped agent: written to the department's fallback owner", func(t *testing.T) {
		spec := callSpec{uid: newUID(), status: 2, legs: []leg{{agents: []agent{nobody}}}}
		require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
		recs := s.waitRecords(spec.uid, 1, within)
		assert.EqualValues(t, 1002, recs[0].Owner.ID, "department sales's owner")
		tr := s.waitStatus(spec.uid, "written", within)
		owner, _ := tr["owner"].(map[string]any)
		assert.Equal(t, "1002", owner["crm_user_id"])
		assert.Contains(t, details(tr), "owned by department sales's fallback owner 1002", "the trace marks the fallback")
		require.NotEmpty(t, recs[0].Notes)
		assert.Contains(t, recs[0].Notes[0].Description, "Owner: department sales's fallback owner 1002")
		waitFor(t, "the fallback owner's task", func() bool { return len(s.tasks(spec.uid)) == 1 })
		assert.EqualValues(t, 1002, s.tasks(spec.uid)[0].AssignedTo)
	})

	t.Run("skip: an unanswered outgoing call leaves nothing in the CRM", func(t *testing.T) {
		spec := callSpec{uid: newUID(), outgoing: true, status: 2, legs: []leg{{agents: []agent{sumit}}}}
		require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
		tr := s.waitStatus(spec.uid, "skipped", within)
		assert.Contains(t, stages(tr), "skipped")
		assert.Empty(t, s.records(spec.uid))
		assert.Empty(t, s.tasks(spec.uid))
	})
}

// details joins the stage details of a trace body.
func details(body map[string]any) string {
	var out string
	list, _ := body["stages"].([]any)
	for _, st := range list {
		if m, ok := st.(map[string]any); ok {
			d, _ := m["detail"].(string)
			out += d + "\n"
		}
	}
	return out
}
