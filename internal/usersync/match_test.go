package usersync_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/usersync"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func mo(id, email string, active bool, phones ...string) directory.User {
	return directory.User{ID: id, Name: "Agent " + id, Email: email, Active: active, Phones: phones}
}

func crmUser(id, email string, active bool) directory.User {
	return directory.User{ID: id, Name: "CRM " + id, Email: email, Active: active}
}

func auto(agent, crmID, email string, status string) mapping.Mapping {
	return mapping.Mapping{MyOperatorUserID: agent, CRMUserID: crmID, Email: email, Name: "CRM " + crmID,
		Source: mapping.SourceEmailMatch, Status: status, UpdatedAt: t0.Add(-time.Hour), UpdatedBy: usersync.Actor}
}

func manual(agent, crmID string, status string) mapping.Mapping {
	return mapping.Mapping{MyOperatorUserID: agent, CRMUserID: crmID, Source: mapping.SourceManual, Status: status,
		UpdatedAt: t0.Add(-time.Hour), UpdatedBy: "admin-api"}
}

// change is an op reduced to what the table checks.
type change struct{ agent, kind, crm, status string }

func changes(p usersync.Plan) []change {
	out := []change{}
	for _, op := range p.Ops {
		c := change{agent: op.UserID, kind: op.Kind}
		if op.Next != nil {
			c.crm, c.status = op.Next.CRMUserID, op.Next.Status
		}
		out = append(out, c)
	}
	return out
}

// why is an unmatched user reduced to what the table checks.
type why struct{ side, id, reason, counterpart string }

func reasons(p usersync.Plan) []why {
	out := []why{}
	for _, u := range p.Unmatched {
		w := why{side: u.Side, id: u.ID, reason: u.Reason}
		if u.Counterpart != nil {
			w.counterpart = u.Counterpart.ID
		}
		out = append(out, w)
	}
	return out
}

func TestMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		settings  tenant.Sync
		mo, crm   []directory.User
		existing  []mapping.Mapping
		changes   []change
		unmatched []why
	}{
		{
			name:    "exact email matches; the match is active at once",
			mo:      []directory.User{mo("a1", "asha@example.com", true)},
			crm:     []directory.User{crmUser("101", "asha@example.com", true)},
			changes: []change{{"a1", usersync.ChangeAdded, "101", mapping.StatusActive}},
		},
		{
			name: "email differing only in case: no match by default, both sides told which address",
			mo:   []directory.User{mo("a1", "Priya@Example.com", true)},
			crm:  []directory.User{crmUser("102", "priya@example.com", true)},
			unmatched: []why{
				{usersync.SideMyOperator, "a1", usersync.ReasonEmailCaseDiffers, "102"},
				{usersync.SideCRM, "102", usersync.ReasonEmailCaseDiffers, "a1"},
			},
			changes: []change{},
		},
		{
			name:     "email_ci matches ignoring case",
			settings: tenant.Sync{Match: tenant.MatchEmailCI},
			mo:       []directory.User{mo("a1", "Priya@Example.com", true)},
			crm:      []directory.User{crmUser("102", "priya@example.com", true)},
			changes:  []change{{"a1", usersync.ChangeAdded, "102", mapping.StatusActive}},
		},
		{
			name: "no counterpart on either side",
			mo:   []directory.User{mo("a1", "ravi@example.com", true)},
			crm:  []directory.User{crmUser("103", "meena@example.com", true)},
			unmatched: []why{
				{usersync.SideMyOperator, "a1", usersync.ReasonNoMatch, ""},
				{usersync.SideCRM, "103", usersync.ReasonNoMatch, ""},
			},
			changes: []change{},
		},
		{
			name: "inactive CRM user: not matched; the agent is told why",
			mo:   []directory.User{mo("a1", "old@example.com", true)},
			crm:  []directory.User{crmUser("104", "old@example.com", false)},
			unmatched: []why{
				{usersync.SideMyOperator, "a1", usersync.ReasonCounterpartOff, "104"},
				{usersync.SideCRM, "104", usersync.ReasonInactive, ""},
			},
			changes: []change{},
		},
		{
			name: "disabled MyOperator user and users without email",
			mo:   []directory.User{mo("a1", "x@example.com", false), mo("a2", "", true)},
			crm:  []directory.User{crmUser("105", "", true), crmUser("106", "x@example.com", true)},
			unmatched: []why{
				{usersync.SideMyOperator, "a1", usersync.ReasonInactive, ""},
				{usersync.SideMyOperator, "a2", usersync.ReasonNoEmail, ""},
				{usersync.SideCRM, "105", usersync.ReasonNoEmail, ""},
				{usersync.SideCRM, "106", usersync.ReasonCounterpartOff, "a1"},
			},
			changes: []change{},
		},
		{
			name: "duplicate emails are ambiguous on either side",
			mo:   []directory.User{mo("a1", "desk@example.com", true), mo("a2", "desk@example.com", true), mo("a3", "sam@example.com", true)},
			crm:  []directory.User{crmUser("107", "desk@example.com", true), crmUser("108", "sam@example.com", true), crmUser("109", "sam@example.com", true)},
			unmatched: []why{
				{usersync.SideMyOperator, "a1", usersync.ReasonDuplicateEmail, ""},
				{usersync.SideMyOperator, "a2", usersync.ReasonDuplicateEmail, ""},
				{usersync.SideMyOperator, "a3", usersync.ReasonDuplicateEmail, ""},
				{usersync.SideCRM, "107", usersync.ReasonDuplicateEmail, ""},
				{usersync.SideCRM, "108", usersync.ReasonDuplicateEmail, ""},
				{usersync.SideCRM, "109", usersync.ReasonDuplicateEmail, ""},
			},
			changes: []change{},
		},
		{
			name: "a deactivated duplicate does not make the active one ambiguous",
			mo:   []directory.User{mo("a1", "sam@example.com", true)},
			crm:  []directory.User{crmUser("108", "sam@example.com", false), crmUser("109", "sam@example.com", true)},
			unmatched: []why{
				{usersync.SideCRM, "108", usersync.ReasonInactive, ""},
			},
			changes: []change{{"a1", usersync.ChangeAdded, "109", mapping.StatusActive}},
		},
		{
			name:     "role filter",
			settings: tenant.Sync{Roles: []string{"Sales Agent"}},
			mo:       []directory.User{mo("a1", "boss@example.com", true), mo("a2", "rep@example.com", true)},
			crm: []directory.User{{ID: "110", Email: "boss@example.com", Active: true, Role: "Administrator"},
				{ID: "111", Email: "rep@example.com", Active: true, Role: "sales agent"}},
			unmatched: []why{
				{usersync.SideMyOperator, "a1", usersync.ReasonCounterpartRole, "110"},
				{usersync.SideCRM, "110", usersync.ReasonRoleFiltered, ""},
			},
			changes: []change{{"a2", usersync.ChangeAdded, "111", mapping.StatusActive}},
		},
		{
			name:     "phone match",
			settings: tenant.Sync{Match: tenant.MatchPhone},
			mo:       []directory.User{mo("a1", "", true, "+918586848544"), mo("a2", "", true)},
			crm:      []directory.User{{ID: "112", Active: true, Phones: []string{"+14155550100", "+918586848544"}}},
			unmatched: []why{
				{usersync.SideMyOperator, "a2", usersync.ReasonNoPhone, ""},
			},
			changes: []change{{"a1", usersync.ChangeAdded, "112", mapping.StatusActive}},
		},
		{
			name:     "custom field holding the MyOperator user id or uuid",
			settings: tenant.Sync{Match: "field:MyOperator_ID"},
			mo: []directory.User{mo("5cd40f6556f2f124", "", true),
				{ID: "5cd40f6556f2f125", Active: true, Fields: map[string]string{"uuid": "u-125"}}},
			crm: []directory.User{{ID: "113", Active: true, Fields: map[string]string{"MyOperator_ID": "5cd40f6556f2f124"}},
				{ID: "114", Active: true, Fields: map[string]string{"myoperator_id": "u-125"}},
				{ID: "115", Active: true}},
			unmatched: []why{{usersync.SideCRM, "115", usersync.ReasonNoField, ""}},
			changes: []change{{"5cd40f6556f2f124", usersync.ChangeAdded, "113", mapping.StatusActive},
				{"5cd40f6556f2f125", usersync.ChangeAdded, "114", mapping.StatusActive}},
		},
		{
			name:     "require_approval: new matches wait as pending",
			settings: tenant.Sync{RequireApproval: true},
			mo:       []directory.User{mo("a1", "asha@example.com", true)},
			crm:      []directory.User{crmUser("101", "asha@example.com", true)},
			changes:  []change{{"a1", usersync.ChangeAdded, "101", mapping.StatusPending}},
		},
		{
			name:     "an approved match stays active under require_approval",
			settings: tenant.Sync{RequireApproval: true},
			mo:       []directory.User{mo("a1", "asha@example.com", true)},
			crm:      []directory.User{crmUser("101", "asha@example.com", true)},
			existing: []mapping.Mapping{auto("a1", "101", "asha@example.com", mapping.StatusActive)},
			changes:  []change{},
		},
		{
			name:     "renamed CRM user and changed email are carried over",
			mo:       []directory.User{mo("a1", "asha.rao@example.com", true)},
			crm:      []directory.User{{ID: "101", Name: "Asha Rao-Menon", Email: "asha.rao@example.com", Active: true}},
			existing: []mapping.Mapping{auto("a1", "101", "asha@example.com", mapping.StatusActive)},
			changes:  []change{{"a1", usersync.ChangeUpdated, "101", mapping.StatusActive}},
		},
		{
			name: "deactivated on either side or deleted: the automatic mapping goes",
			mo:   []directory.User{mo("a1", "asha@example.com", true), mo("a2", "ravi@example.com", false), mo("a9", "keep@example.com", true)},
			crm:  []directory.User{crmUser("101", "asha@example.com", false), crmUser("102", "ravi@example.com", true), crmUser("109", "keep@example.com", true)},
			existing: []mapping.Mapping{auto("a1", "101", "asha@example.com", mapping.StatusActive),
				auto("a2", "102", "ravi@example.com", mapping.StatusActive), auto("a3", "103", "gone@example.com", mapping.StatusActive),
				auto("a9", "109", "keep@example.com", mapping.StatusActive)},
			unmatched: []why{
				{usersync.SideMyOperator, "a1", usersync.ReasonCounterpartOff, "101"},
				{usersync.SideMyOperator, "a2", usersync.ReasonInactive, ""},
				{usersync.SideCRM, "101", usersync.ReasonInactive, ""},
				{usersync.SideCRM, "102", usersync.ReasonCounterpartOff, "a2"},
			},
			changes: []change{{"a1", usersync.ChangeRemoved, "", ""}, {"a2", usersync.ChangeRemoved, "", ""}, {"a3", usersync.ChangeRemoved, "", ""}},
		},
		{
			name:      "a matched agent moves to another CRM user",
			mo:        []directory.User{mo("a1", "asha@example.com", true)},
			crm:       []directory.User{crmUser("101", "old@example.com", true), crmUser("201", "asha@example.com", true)},
			existing:  []mapping.Mapping{auto("a1", "101", "asha@example.com", mapping.StatusActive)},
			unmatched: []why{{usersync.SideCRM, "101", usersync.ReasonNoMatch, ""}},
			changes:   []change{{"a1", usersync.ChangeUpdated, "201", mapping.StatusActive}},
		},
		{
			name:      "manual wins: its agent is not matched automatically and stays",
			mo:        []directory.User{mo("a1", "asha@example.com", true)},
			crm:       []directory.User{crmUser("101", "asha@example.com", true), crmUser("555", "other@example.com", true)},
			existing:  []mapping.Mapping{manual("a1", "555", mapping.StatusActive)},
			unmatched: []why{{usersync.SideCRM, "101", usersync.ReasonNoMatch, ""}},
			changes:   []change{},
		},
		{
			name:      "manual: CRM user deactivated → suspended; absent → left alone",
			mo:        []directory.User{mo("a1", "", true)},
			crm:       []directory.User{crmUser("555", "x@example.com", false)},
			existing:  []mapping.Mapping{manual("a1", "555", mapping.StatusActive), manual("a2", "404", mapping.StatusActive)},
			unmatched: []why{},
			changes:   []change{{"a1", usersync.ChangeSuspended, "555", mapping.StatusSuspended}},
		},
		{
			name:      "manual: suspended mapping resumes when the CRM user is active again",
			mo:        []directory.User{mo("a1", "", true)},
			crm:       []directory.User{crmUser("555", "x@example.com", true)},
			existing:  []mapping.Mapping{manual("a1", "555", mapping.StatusSuspended)},
			unmatched: []why{},
			changes:   []change{{"a1", usersync.ChangeResumed, "555", mapping.StatusActive}},
		},
		{
			name:      "an empty list from one side removes nothing",
			mo:        []directory.User{mo("a1", "asha@example.com", true)},
			crm:       nil,
			existing:  []mapping.Mapping{auto("a1", "101", "asha@example.com", mapping.StatusActive)},
			unmatched: []why{{usersync.SideMyOperator, "a1", usersync.ReasonNoMatch, ""}},
			changes:   []change{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := usersync.Match(usersync.Input{Settings: tc.settings, MyOperator: tc.mo, CRM: tc.crm, Existing: tc.existing, Now: t0})
			assert.Equal(t, tc.changes, changes(p), "changes")
			if tc.unmatched == nil {
				tc.unmatched = []why{}
			}
			assert.Equal(t, tc.unmatched, reasons(p), "unmatched")
		})
	}
}

// What the admin reads for a case-only difference names the other address.
func TestMatchCaseDetail(t *testing.T) {
	t.Parallel()
	p := usersync.Match(usersync.Input{MyOperator: []directory.User{mo("a1", "Priya@Example.com", true)},
		CRM: []directory.User{crmUser("102", "priya@example.com", true)}, Now: t0})
	require.Len(t, p.Unmatched, 2)
	assert.Contains(t, p.Unmatched[0].Detail, `"priya@example.com"`)
	assert.Contains(t, p.Unmatched[0].Detail, "only in case")
	assert.Equal(t, &usersync.Counterpart{Side: usersync.SideCRM, ID: "102", Email: "priya@example.com"}, p.Unmatched[0].Counterpart)
	assert.Contains(t, p.Unmatched[1].Detail, `"Priya@Example.com"`)
}

// A new match carries the agent's email and phones (the indexes webhooks resolve
// by) and the CRM user's name.
func TestMatchMappingContent(t *testing.T) {
	t.Parallel()
	p := usersync.Match(usersync.Input{MyOperator: []directory.User{mo("a1", "asha@example.com", true, "+918586848544", "bad")},
		CRM: []directory.User{crmUser("101", "asha@example.com", true)}, Now: t0})
	require.Len(t, p.Ops, 1)
	assert.Equal(t, &mapping.Mapping{MyOperatorUserID: "a1", CRMUserID: "101", Email: "asha@example.com", Phones: []string{"+918586848544"},
		Name: "CRM 101", Source: mapping.SourceEmailMatch, Status: mapping.StatusActive, UpdatedAt: t0, UpdatedBy: "sync"}, p.Ops[0].Next)
	assert.NoError(t, p.Ops[0].Next.Validate())
}
