package kylas_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

var callIDLine = regexp.MustCompile(`(?m)^Call ID: (\S+)$`)

func TestTaskConformance(t *testing.T) {
	t.Parallel()
	crmtest.RunTasks(t, crmtest.TaskHarness{
		Harness: crmtest.Harness{
			Owners: [2]string{"4242", "5151"},
			Settle: testSettle,
			Setup: func(t *testing.T, o crmtest.Options) (crm.Adapter, crmtest.Backend) {
				sb := newSandbox(t, sandbox.KylasOptions{})
				return adapter(t, sb, o), backend{sb, crmtest.SandboxFaults{S: sb}}
			},
		},
		Tasks: func(t *testing.T, b crmtest.Backend) []crmtest.TaskRecord {
			var out []crmtest.TaskRecord
			for _, k := range b.(backend).sb.Tasks() {
				due, err := time.Parse(time.RFC3339Nano, k.DueDate)
				require.NoError(t, err)
				r := crmtest.TaskRecord{ID: strconv.FormatInt(k.ID, 10), OwnerID: strconv.FormatInt(k.AssignedTo, 10),
					Subject: k.Name, Due: due}
				if m := callIDLine.FindStringSubmatch(k.Description); m != nil {
					r.CallID = m[1]
				}
				if len(k.Relation) > 0 {
					r.RelatedID, r.RelatedType = strconv.FormatInt(k.Relation[0].TargetEntityID, 10), strings.ToLower(k.Relation[0].TargetEntityType)
				}
				out = append(out, r)
			}
			return out
		},
	})
}

// The sandbox refuses a task the way the documented API does: every required field,
// picklist values by option id only, an existing relation.
func TestSandboxTaskStrictness(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, sandbox.KylasOptions{})
	u, _ := servers.Load(sb)
	for _, tc := range []struct{ name, body, field string }{
		{"missing name", `{"dueDate":"2026-05-01T18:29:59.999Z","assignedTo":1,"type":501,"status":601,"priority":702}`, "name"},
		{"missing owner", `{"name":"x","dueDate":"2026-05-01T18:29:59.999Z","type":501,"status":601,"priority":702}`, "assignedTo"},
		{"type by name", `{"name":"x","dueDate":"2026-05-01T18:29:59.999Z","assignedTo":1,"type":"CALL","status":601,"priority":702}`, "type"},
		{"unknown option", `{"name":"x","dueDate":"2026-05-01T18:29:59.999Z","assignedTo":1,"type":501,"status":999,"priority":702}`, "status"},
		{"bad due date", `{"name":"x","dueDate":"tomorrow","assignedTo":1,"type":501,"status":601,"priority":702}`, "dueDate"},
		{"no such lead", `{"name":"x","dueDate":"2026-05-01T18:29:59.999Z","assignedTo":1,"type":501,"status":601,"priority":702,"relation":[{"targetEntityId":9,"targetEntityType":"LEAD"}]}`, "relation[0].targetEntityId"},
		{"bad entity type", `{"name":"x","dueDate":"2026-05-01T18:29:59.999Z","assignedTo":1,"type":501,"status":601,"priority":702,"relation":[{"targetEntityId":9,"targetEntityType":"lead"}]}`, "relation[0].targetEntityType"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, u.(string)+"/v1/tasks", tc.body)
			assert.Equal(t, 400, status)
			assert.Contains(t, body, `"code":"invalid_request"`)
			assert.Contains(t, body, `"field":"`+tc.field+`"`)
		})
	}
	status, body := post(t, u.(string)+"/v1/tasks/search?page=0&size=10", `{"jsonRule":{"condition":"AND","rules":[{"field":"assignedTo","type":"long","operator":"equal","value":1}]}}`)
	assert.Equal(t, 404, status, "no sort: %s", body)
	status, body = post(t, u.(string)+"/v1/tasks/search?page=0&size=10&sort=createdAt,desc", `{"jsonRule":{"condition":"AND","rules":[{"field":"name","type":"string","operator":"equal","value":"x"}]}}`)
	assert.Equal(t, 400, status)
	assert.Contains(t, body, "not filterable")
	assert.Empty(t, sb.Tasks())
}

// A task of an internal call, or of a caller with no lead or contact, is unrelated.
func TestTaskUnrelated(t *testing.T) {
	t.Parallel()
	sb, a := setup(t, sandbox.KylasOptions{})
	c := crmtest.NewCall("int-1", "+919711636496", "4242", call.Incoming, call.Missed)
	c.Log.Internal = true
	_, err := a.CreateTask(context.Background(), crmtest.NewTask(c))
	require.NoError(t, err)
	require.Len(t, sb.Tasks(), 1)
	assert.Empty(t, sb.Tasks()[0].Relation)
	assert.EqualValues(t, 501, sb.Tasks()[0].Type, "type Call")
	assert.EqualValues(t, 601, sb.Tasks()[0].Status, "status Open")
	assert.EqualValues(t, 702, sb.Tasks()[0].Priority, "priority Medium")
	id, found, err := a.FindTask(context.Background(), crmtest.NewTask(c))
	require.NoError(t, err)
	assert.True(t, found, "found by its owner")
	assert.Equal(t, strconv.FormatInt(sb.Tasks()[0].ID, 10), id)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("api-key", "demo-crm-key")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
