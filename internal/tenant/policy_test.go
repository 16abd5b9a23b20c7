package tenant_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/tenant"
)

func TestCallPolicySettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		check      func(t *testing.T, p tenant.CallPolicy)
		err        string
	}{
		{name: "defaults: everything logged, tasks due in 2h, no departments", check: func(t *testing.T, p tenant.CallPolicy) {
			for _, c := range tenant.Categories {
				a, set := p.Action(c)
				assert.Equal(t, tenant.ActionLog, a, c)
				assert.False(t, set, c)
			}
			assert.Equal(t, 2*time.Hour, p.TaskDue)
			assert.Nil(t, p.BusinessHours)
			_, ok := p.DepartmentOwner("sales")
			assert.False(t, ok)
		}},
		{name: "all set", yaml: `    policies: {missed: log_and_task, voicemail: log_and_task, unanswered_outgoing: skip, internal: skip, out_of_hours: log}
    business_hours: {time_zone: Asia/Kolkata, mon: "09:30-13:00, 14:00-18:30", sat: "10:00-14:00", sun: closed}
    task_due: 30m
    departments: {Sales: "1002", support: "1003"}
`, check: func(t *testing.T, p tenant.CallPolicy) {
			a, set := p.Action(tenant.CategoryMissed)
			assert.Equal(t, tenant.ActionLogAndTask, a)
			assert.True(t, set)
			a, _ = p.Action(tenant.CategoryUnansweredOutgoing)
			assert.Equal(t, tenant.ActionSkip, a)
			assert.Equal(t, 30*time.Minute, p.TaskDue)
			owner, ok := p.DepartmentOwner(" SALES ")
			assert.True(t, ok)
			assert.Equal(t, "1002", owner)
			ist, _ := time.LoadLocation("Asia/Kolkata")
			bh := p.BusinessHours
			require.NotNil(t, bh)
			// 2026-11-30 is a Monday.
			assert.True(t, bh.Open(time.Date(2026, 11, 30, 9, 30, 0, 0, ist)))
			assert.False(t, bh.Open(time.Date(2026, 11, 30, 13, 30, 0, 0, ist)), "lunch")
			assert.False(t, bh.Open(time.Date(2026, 11, 30, 18, 30, 0, 0, ist)), "the end is exclusive")
			assert.True(t, bh.Open(time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)), "09:30 IST in UTC")
			assert.False(t, bh.Open(time.Date(2026, 12, 1, 10, 0, 0, 0, ist)), "Tuesday is not listed: closed")
			assert.True(t, bh.Open(time.Date(2026, 12, 5, 11, 0, 0, 0, ist)), "Saturday")
		}},
		{name: "unknown category", yaml: "    policies: {answered: skip}\n", err: "tenant acme: policies.answered: unknown call category"},
		{name: "unknown action", yaml: "    policies: {missed: task}\n", err: `tenant acme: policies.missed "task": use log (the default), log_and_task or skip`},
		{name: "internal calls get no task", yaml: "    policies: {internal: log_and_task}\n", err: "policies.internal log_and_task: an internal call has no customer"},
		{name: "out of hours without hours", yaml: "    policies: {out_of_hours: skip}\n", err: "tenant acme: policies.out_of_hours needs business_hours"},
		{name: "hours without zone", yaml: "    business_hours: {mon: 09:00-18:00}\n", err: "business_hours.time_zone is required"},
		{name: "bad zone", yaml: "    business_hours: {time_zone: Mars/Olympus, mon: 09:00-18:00}\n", err: `business_hours.time_zone "Mars/Olympus": not an IANA time zone`},
		{name: "bad day", yaml: "    business_hours: {time_zone: UTC, monday: 09:00-18:00}\n", err: "business_hours.monday: unknown key"},
		{name: "bad range", yaml: "    business_hours: {time_zone: UTC, mon: 9-18}\n", err: "business_hours.mon:"},
		{name: "range ends first", yaml: "    business_hours: {time_zone: UTC, mon: 22:00-06:00}\n", err: "ends before it begins"},
		{name: "overlap", yaml: `    business_hours: {time_zone: UTC, mon: "09:00-13:00, 12:00-18:00"}` + "\n", err: "overlaps"},
		{name: "never open", yaml: "    business_hours: {time_zone: UTC, mon: closed}\n", err: "no day has opening hours"},
		{name: "bad task due", yaml: "    task_due: soon\n", err: `tenant acme: task_due "soon"`},
		{name: "task due too far", yaml: "    task_due: 1000h\n", err: "at most 720h"},
		{name: "department without owner", yaml: "    departments: {sales: \"\"}\n", err: "tenant acme: departments.sales: the CRM user id"},
		{name: "department twice", yaml: "    departments: {sales: \"1\", Sales: \"2\"}\n", err: "named twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg, err := loadAcme(t, tc.yaml)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			a, _ := reg.Get("acme")
			tc.check(t, a.Calls)
		})
	}
}

func TestFallbackOwnerOf(t *testing.T) {
	t.Parallel()
	depts := tenant.CallPolicy{Departments: map[string]string{"sales": "1002"}}
	for _, tc := range []struct {
		name string
		t    tenant.Tenant
		dept string
		want *call.Owner
		note string
	}{
		{"department owner", tenant.Tenant{Calls: depts, FallbackOwner: "9"}, "Sales", &call.Owner{CRMUserID: "1002", Source: "department"}, "department Sales's fallback owner 1002"},
		{"other department: the tenant's fallback", tenant.Tenant{Calls: depts, FallbackOwner: "9"}, "Support", &call.Owner{CRMUserID: "9", Source: "fallback"}, "the tenant's fallback owner 9"},
		{"no department", tenant.Tenant{Calls: depts}, "", nil, ""},
		{"nothing configured", tenant.Tenant{}, "Sales", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &call.Log{Department: tc.dept, Agent: &call.Agent{ID: "5cd40f6556f2f124"}}
			got := tc.t.FallbackOwnerOf(l)
			assert.Equal(t, tc.want, got)
			l.Owner = got
			assert.Equal(t, tc.want != nil, got.IsFallback())
			if tc.note == "" {
				assert.Empty(t, l.FallbackNote())
				return
			}
			assert.Contains(t, l.FallbackNote(), tc.note)
			assert.Contains(t, l.FallbackNote(), "agent 5cd40f6556f2f124 is not mapped")
		})
	}
	l := &call.Log{Owner: &call.Owner{CRMUserID: "1", Source: "manual"}}
	assert.Empty(t, l.FallbackNote(), "the agent's own owner is no fallback")
	l = &call.Log{Department: "Sales", Owner: &call.Owner{CRMUserID: "1002", Source: "department"}}
	assert.Contains(t, l.FallbackNote(), "no agent was rung")
}
