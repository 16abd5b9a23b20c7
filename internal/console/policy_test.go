package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/calltrack/calltrack/internal/tenant"
)

func TestPolicyView(t *testing.T) {
	ist := time.FixedZone("Asia/Kolkata", 5*3600+1800)
	bh := &tenant.BusinessHours{Location: ist}
	bh.Days[time.Monday] = []tenant.Range{{From: 9*60 + 30, To: 13 * 60}, {From: 14 * 60, To: 24 * 60}}
	v := newPolicyView(tenant.CallPolicy{BusinessHours: bh,
		Actions:     map[tenant.Category]tenant.Action{tenant.CategoryMissed: tenant.ActionLogAndTask, tenant.CategoryInternal: tenant.ActionSkip},
		Departments: map[string]string{"support": "7", "sales": "1002"}}, map[string]string{"1002": "Priya N"})

	assert.Equal(t, "Asia/Kolkata", v.Zone)
	assert.Equal(t, []string{"Mon 09:30–13:00, 14:00–24:00", "Tue closed", "Wed closed", "Thu closed", "Fri closed", "Sat closed", "Sun closed"}, v.BusinessHours)
	assert.Equal(t, tenant.DefaultTaskDue, v.TaskDue, "the default when the tenant sets none")
	assert.Equal(t, []departmentRow{{"sales", "1002", "Priya N"}, {"support", "7", ""}}, v.Departments)
	got := map[string]policyRule{}
	for _, r := range v.Rules {
		got[r.Category] = r
	}
	assert.Equal(t, policyRule{"missed", "an incoming call nobody answered", "log and a follow-up task for the owner", true}, got["missed"])
	assert.Equal(t, "skip (nothing written to the CRM)", got["internal"].Action)
	assert.Equal(t, policyRule{"voicemail", "an incoming call that left a voicemail", "log", false}, got["voicemail"])
	assert.Contains(t, got["out_of_hours"].Action, "not set", "shown when business hours are set; only an explicit policy applies")

	v = newPolicyView(tenant.CallPolicy{}, nil)
	assert.Nil(t, v.BusinessHours)
	for _, r := range v.Rules {
		assert.NotEqual(t, "out_of_hours", r.Category, "never applies without business hours")
	}
}

func TestClickToCallView(t *testing.T) {
	on := tenant.ClickToCall{OBDURL: "https://obd-api.myoperator.co/obd-api-v1", APIKey: "k", SecretToken: "s", PublicIVRID: "ivr", PerUserPerMinute: 3}
	v := newClickToCallView(&tenant.Tenant{ID: "acme", APIToken: "tok", APITokenEnv: "ACME_API_TOKEN", ClickToCall: on})
	assert.True(t, v.On)
	assert.Equal(t, "ACME_API_TOKEN", v.APITokenEnv)
	assert.Empty(t, v.Off)

	v = newClickToCallView(&tenant.Tenant{ID: "acme"})
	assert.False(t, v.On)
	assert.False(t, v.APIToken)
	assert.Contains(t, v.Off, "click_to_call")
}
