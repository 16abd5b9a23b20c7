package zoho_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
)

var taskCallID = regexp.MustCompile(`(?m)^Call ID: (\S+)$`)

func TestTaskConformance(t *testing.T) {
	t.Parallel()
	crmtest.RunTasks(t, crmtest.TaskHarness{
		Harness: crmtest.Harness{
			Owners: [2]string{"5725767000000411001", "5725767000000411002"},
			Settle: testSettle,
			Setup: func(t *testing.T, o crmtest.Options) (crm.Adapter, crmtest.Backend) {
				sb, a, url := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) { c.Leads, c.Parties = o.Leads, o.Parties })
				return a, backend{sb, crmtest.SandboxFaults{S: sb}, url}
			},
		},
		Tasks: func(t *testing.T, b crmtest.Backend) []crmtest.TaskRecord {
			var out []crmtest.TaskRecord
			for _, k := range b.(backend).sb.Tasks() {
				due, err := time.ParseInLocation(time.DateOnly, k.DueDate, time.FixedZone("IST", 5*3600+1800))
				require.NoError(t, err)
				r := crmtest.TaskRecord{ID: k.ID, OwnerID: k.Owner.ID, Subject: k.Subject, Due: due, DueDateOnly: true}
				if m := taskCallID.FindStringSubmatch(k.Description); m != nil {
					r.CallID = m[1]
				}
				switch {
				case k.WhoID != nil:
					r.RelatedID, r.RelatedType = k.WhoID.ID, "contact"
				case k.WhatID != nil && k.SeModule == "Leads":
					r.RelatedID, r.RelatedType = k.WhatID.ID, "lead"
				}
				out = append(out, r)
			}
			return out
		},
	})
}

func TestTaskRecord(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, nil)
	c := crmtest.NewCall("z-task-1", "+919711636496", "5725767000000411001", call.Incoming, call.Missed)
	task := crmtest.NewTask(c)
	task.Subject = "Call back " + strings.Repeat("x", 300)
	_, err := a.CreateTask(context.Background(), task)
	require.NoError(t, err)
	got := sb.Tasks()
	require.Len(t, got, 1)
	assert.True(t, strings.HasSuffix(got[0].Subject, " [z-task-1]"), "the call id survives a long subject: %q", got[0].Subject)
	assert.LessOrEqual(t, len([]rune(got[0].Subject)), 255)
	assert.Equal(t, "Not Started", got[0].Status)
	assert.Equal(t, "Normal", got[0].Priority)
	assert.Equal(t, "2026-03-14", got[0].DueDate, "due in the tenant's zone")
}

func TestSandboxTaskStrictness(t *testing.T) {
	t.Parallel()
	sb, _, url := setup(t, sandbox.ZohoOptions{Users: []sandbox.ZohoUser{{ID: "1", FullName: "Asha Rao"}}}, nil) // the bodies' Owner is a user
	for _, tc := range []struct{ name, rec, code, field string }{
		{"no subject", `{"Owner":{"id":"1"}}`, "MANDATORY_NOT_FOUND", "Subject"},
		{"no owner", `{"Subject":"x"}`, "MANDATORY_NOT_FOUND", "Owner"},
		{"bad status", `{"Subject":"x","Owner":{"id":"1"},"Status":"Open"}`, "INVALID_DATA", "Status"},
		{"bad priority", `{"Subject":"x","Owner":{"id":"1"},"Priority":"Medium"}`, "INVALID_DATA", "Priority"},
		{"bad date", `{"Subject":"x","Owner":{"id":"1"},"Due_Date":"2026-03-14T10:00:00+05:30"}`, "INVALID_DATA", "Due_Date"},
		{"What_Id without module", `{"Subject":"x","Owner":{"id":"1"},"What_Id":{"id":"5"}}`, "MANDATORY_NOT_FOUND", "$se_module"},
		{"no such contact", `{"Subject":"x","Owner":{"id":"1"},"Who_Id":{"id":"5"}}`, "INVALID_DATA", "Who_Id"},
		{"unknown field", `{"Subject":"x","Owner":{"id":"1"},"Call_Type":"Missed"}`, "INVALID_DATA", "Call_Type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := zohoPost(t, url+"/crm/v8/Tasks", `{"data":[`+tc.rec+`]}`)
			assert.Equal(t, 400, status)
			assert.Contains(t, body, `"code":"`+tc.code+`"`)
			assert.Contains(t, body, `"api_name":"`+tc.field+`"`)
		})
	}
	assert.Empty(t, sb.Tasks())
}

func zohoPost(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Zoho-oauthtoken "+sandbox.ZohoAccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
