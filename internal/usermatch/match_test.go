package usermatch_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/usermatch"
	"github.com/calltrack/calltrack/internal/usermatch/usermatchtest"
)

// change is an op reduced to what the table checks.
type change struct{ agent, kind, crm, status string }

func changes(p usermatch.Plan) []change {
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

func reasons(p usermatch.Plan) []why {
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
		existing  []call.Mapping
		changes   []change
		unmatched []why
	}{
		{
			name:    "exact email matches; the match is active at once",
			mo:      []directory.User{usermatchtest.Agent("a1", "asha@example.com", true)},
			crm:     []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true)},
			changes: []change{{"a1", usermatch.ChangeAdded, "101", call.MappingActive}},
		},
		{
			name: "email differing only in case: no match by default, both sides told which address",
			mo:   []directory.User{usermatchtest.Agent("a1", "Priya@Example.com", true)},
			crm:  []directory.User{usermatchtest.CRMUser("102", "priya@example.com", true)},
			unmatched: []why{
				{usermatch.SideMyOperator, "a1", usermatch.ReasonEmailCaseDiffers, "102"},
				{usermatch.SideCRM, "102", usermatch.ReasonEmailCaseDiffers, "a1"},
			},
			changes: []change{},
		},
		{
			name:     "email_ci matches ignoring case",
			settings: tenant.Sync{Match: tenant.MatchEmailCI},
			mo:       []directory.User{usermatchtest.Agent("a1", "Priya@Example.com", true)},
			crm:      []directory.User{usermatchtest.CRMUser("102", "priya@example.com", true)},
			changes:  []change{{"a1", usermatch.ChangeAdded, "102", call.MappingActive}},
		},
		{
			name: "no counterpart on either side",
			mo:   []directory.User{usermatchtest.Agent("a1", "ravi@example.com", true)},
			crm:  []directory.User{usermatchtest.CRMUser("103", "meena@example.com", true)},
			unmatched: []why{
				{usermatch.SideMyOperator, "a1", usermatch.ReasonNoMatch, ""},
				{usermatch.SideCRM, "103", usermatch.ReasonNoMatch, ""},
			},
			changes: []change{},
		},
		{
			name: "inactive CRM user: not matched; the agent is told why",
			mo:   []directory.User{usermatchtest.Agent("a1", "old@example.com", true)},
			crm:  []directory.User{usermatchtest.CRMUser("104", "old@example.com", false)},
			unmatched: []why{
				{usermatch.SideMyOperator, "a1", usermatch.ReasonCounterpartOff, "104"},
				{usermatch.SideCRM, "104", usermatch.ReasonInactive, ""},
			},
			changes: []change{},
		},
		{
			name: "disabled MyOperator user and users without email",
			mo:   []directory.User{usermatchtest.Agent("a1", "x@example.com", false), usermatchtest.Agent("a2", "", true)},
			crm:  []directory.User{usermatchtest.CRMUser("105", "", true), usermatchtest.CRMUser("106", "x@example.com", true)},
			unmatched: []why{
				{usermatch.SideMyOperator, "a1", usermatch.ReasonInactive, ""},
				{usermatch.SideMyOperator, "a2", usermatch.ReasonNoEmail, ""},
				{usermatch.SideCRM, "105", usermatch.ReasonNoEmail, ""},
				{usermatch.SideCRM, "106", usermatch.ReasonCounterpartOff, "a1"},
			},
			changes: []change{},
		},
		{
			name: "duplicate emails are ambiguous on either side",
			mo:   []directory.User{usermatchtest.Agent("a1", "desk@example.com", true), usermatchtest.Agent("a2", "desk@example.com", true), usermatchtest.Agent("a3", "sam@example.com", true)},
			crm:  []directory.User{usermatchtest.CRMUser("107", "desk@example.com", true), usermatchtest.CRMUser("108", "sam@example.com", true), usermatchtest.CRMUser("109", "sam@example.com", true)},
			unmatched: []why{
				{usermatch.SideMyOperator, "a1", usermatch.ReasonDuplicateEmail, ""},
				{usermatch.SideMyOperator, "a2", usermatch.ReasonDuplicateEmail, ""},
				{usermatch.SideMyOperator, "a3", usermatch.ReasonDuplicateEmail, ""},
				{usermatch.SideCRM, "107", usermatch.ReasonDuplicateEmail, ""},
				{usermatch.SideCRM, "108", usermatch.ReasonDuplicateEmail, ""},
				{usermatch.SideCRM, "109", usermatch.ReasonDuplicateEmail, ""},
			},
			changes: []change{},
		},
		{
			name: "a deactivated duplicate does not make the active one ambiguous",
			mo:   []directory.User{usermatchtest.Agent("a1", "sam@example.com", true)},
			crm:  []directory.User{usermatchtest.CRMUser("108", "sam@example.com", false), usermatchtest.CRMUser("109", "sam@example.com", true)},
			unmatched: []why{
				{usermatch.SideCRM, "108", usermatch.ReasonInactive, ""},
			},
			changes: []change{{"a1", usermatch.ChangeAdded, "109", call.MappingActive}},
		},
		{
			name:     "role filter",
			settings: tenant.Sync{Roles: []string{"Sales Agent"}},
			mo:       []directory.User{usermatchtest.Agent("a1", "boss@example.com", true), usermatchtest.Agent("a2", "rep@example.com", true)},
			crm: []directory.User{{ID: "110", Email: "boss@example.com", Active: true, Role: "Administrator"},
				{ID: "111", Email: "rep@example.com", Active: true, Role: "sales agent"}},
			unmatched: []why{
				{usermatch.SideMyOperator, "a1", usermatch.ReasonCounterpartRole, "110"},
				{usermatch.SideCRM, "110", usermatch.ReasonRoleFiltered, ""},
			},
			changes: []change{{"a2", usermatch.ChangeAdded, "111", call.MappingActive}},
		},
		{
			name:     "phone match",
			settings: tenant.Sync{Match: tenant.MatchPhone},
			mo:       []directory.User{usermatchtest.Agent("a1", "", true, "+918586848544"), usermatchtest.Agent("a2", "", true)},
			crm:      []directory.User{{ID: "112", Active: true, Phones: []string{"+14155550100", "+918586848544"}}},
			unmatched: []why{
				{usermatch.SideMyOperator, "a2", usermatch.ReasonNoPhone, ""},
			},
			changes: []change{{"a1", usermatch.ChangeAdded, "112", call.MappingActive}},
		},
		{
			name:     "custom field holding the MyOperator user id or uuid",
			settings: tenant.Sync{Match: "field:MyOperator_ID"},
			mo: []directory.User{usermatchtest.Agent("5cd40f6556f2f124", "", true),
				{ID: "5cd40f6556f2f125", Active: true, Fields: map[string]string{"uuid": "u-125"}}},
			crm: []directory.User{{ID: "113", Active: true, Fields: map[string]string{"MyOperator_ID": "5cd40f6556f2f124"}},
				{ID: "114", Active: true, Fields: map[string]string{"myoperator_id": "u-125"}},
				{ID: "115", Active: true}},
			unmatched: []why{{usermatch.SideCRM, "115", usermatch.ReasonNoField, ""}},
			changes: []change{{"5cd40f6556f2f124", usermatch.ChangeAdded, "113", call.MappingActive},
				{"5cd40f6556f2f125", usermatch.ChangeAdded, "114", call.MappingActive}},
		},
		{
			name:     "require_approval: new matches wait as pending",
			settings: tenant.Sync{RequireApproval: true},
			mo:       []directory.User{usermatchtest.Agent("a1", "asha@example.com", true)},
			crm:      []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true)},
			changes:  []change{{"a1", usermatch.ChangeAdded, "101", call.MappingPending}},
		},
		{
			name:     "an approved match stays active under require_approval",
			settings: tenant.Sync{RequireApproval: true},
			mo:       []directory.User{usermatchtest.Agent("a1", "asha@example.com", true)},
			crm:      []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true)},
			existing: []call.Mapping{usermatchtest.Auto("a1", "101", "asha@example.com", call.MappingActive)},
			changes:  []change{},
		},
		{
			name:     "renamed CRM user and changed email are carried over",
			mo:       []directory.User{usermatchtest.Agent("a1", "asha.rao@example.com", true)},
			crm:      []directory.User{{ID: "101", Name: "Asha Rao-Menon", Email: "asha.rao@example.com", Active: true}},
			existing: []call.Mapping{usermatchtest.Auto("a1", "101", "asha@example.com", call.MappingActive)},
			changes:  []change{{"a1", usermatch.ChangeUpdated, "101", call.MappingActive}},
		},
		{
			name: "deactivated on either side or deleted: the automatic mapping goes",
			mo:   []directory.User{usermatchtest.Agent("a1", "asha@example.com", true), usermatchtest.Agent("a2", "ravi@example.com", false), usermatchtest.Agent("a9", "keep@example.com", true)},
			crm:  []directory.User{usermatchtest.CRMUser("101", "asha@example.com", false), usermatchtest.CRMUser("102", "ravi@example.com", true), usermatchtest.CRMUser("109", "keep@example.com", true)},
			existing: []call.Mapping{usermatchtest.Auto("a1", "101", "asha@example.com", call.MappingActive),
				usermatchtest.Auto("a2", "102", "ravi@example.com", call.MappingActive), usermatchtest.Auto("a3", "103", "gone@example.com", call.MappingActive),
				usermatchtest.Auto("a9", "109", "keep@example.com", call.MappingActive)},
			unmatched: []why{
				{usermatch.SideMyOperator, "a1", usermatch.ReasonCounterpartOff, "101"},
				{usermatch.SideMyOperator, "a2", usermatch.ReasonInactive, ""},
				{usermatch.SideCRM, "101", usermatch.ReasonInactive, ""},
				{usermatch.SideCRM, "102", usermatch.ReasonCounterpartOff, "a2"},
			},
			changes: []change{{"a1", usermatch.ChangeRemoved, "", ""}, {"a2", usermatch.ChangeRemoved, "", ""}, {"a3", usermatch.ChangeRemoved, "", ""}},
		},
		{
			name:      "a matched agent moves to another CRM user",
			mo:        []directory.User{usermatchtest.Agent("a1", "asha@example.com", true)},
			crm:       []directory.User{usermatchtest.CRMUser("101", "old@example.com", true), usermatchtest.CRMUser("201", "asha@example.com", true)},
			existing:  []call.Mapping{usermatchtest.Auto("a1", "101", "asha@example.com", call.MappingActive)},
			unmatched: []why{{usermatch.SideCRM, "101", usermatch.ReasonNoMatch, ""}},
			changes:   []change{{"a1", usermatch.ChangeUpdated, "201", call.MappingActive}},
		},
		{
			name:      "manual wins: its agent is not matched automatically and stays",
			mo:        []directory.User{usermatchtest.Agent("a1", "asha@example.com", true)},
			crm:       []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("555", "other@example.com", true)},
			existing:  []call.Mapping{usermatchtest.Manual("a1", "555", call.MappingActive)},
			unmatched: []why{{usermatch.SideCRM, "101", usermatch.ReasonNoMatch, ""}},
			changes:   []change{},
		},
		{
			name:      "manual: CRM user deactivated → suspended; absent → left alone",
			mo:        []directory.User{usermatchtest.Agent("a1", "", true)},
			crm:       []directory.User{usermatchtest.CRMUser("555", "x@example.com", false)},
			existing:  []call.Mapping{usermatchtest.Manual("a1", "555", call.MappingActive), usermatchtest.Manual("a2", "404", call.MappingActive)},
			unmatched: []why{},
			changes:   []change{{"a1", usermatch.ChangeSuspended, "555", call.MappingSuspended}},
		},
		{
			name:      "manual: suspended mapping resumes when the CRM user is active again",
			mo:        []directory.User{usermatchtest.Agent("a1", "", true)},
			crm:       []directory.User{usermatchtest.CRMUser("555", "x@example.com", true)},
			existing:  []call.Mapping{usermatchtest.Manual("a1", "555", call.MappingSuspended)},
			unmatched: []why{},
			changes:   []change{{"a1", usermatch.ChangeResumed, "555", call.MappingActive}},
		},
		{
			name:      "an empty list from one side removes nothing",
			mo:        []directory.User{usermatchtest.Agent("a1", "asha@example.com", true)},
			crm:       nil,
			existing:  []call.Mapping{usermatchtest.Auto("a1", "101", "asha@example.com", call.MappingActive)},
			unmatched: []why{{usermatch.SideMyOperator, "a1", usermatch.ReasonNoMatch, ""}},
			changes:   []change{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := usermatch.Match(usermatch.Input{Settings: tc.settings, MyOperator: tc.mo, CRM: tc.crm, Existing: tc.existing, Now: usermatchtest.T0})
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
	p := usermatch.Match(usermatch.Input{MyOperator: []directory.User{usermatchtest.Agent("a1", "Priya@Example.com", true)},
		CRM: []directory.User{usermatchtest.CRMUser("102", "priya@example.com", true)}, Now: usermatchtest.T0})
	require.Len(t, p.Unmatched, 2)
	assert.Contains(t, p.Unmatched[0].Detail, `"priya@example.com"`)
	assert.Contains(t, p.Unmatched[0].Detail, "only in case")
	assert.Equal(t, &usermatch.Counterpart{Side: usermatch.SideCRM, ID: "102", Email: "priya@example.com"}, p.Unmatched[0].Counterpart)
	assert.Contains(t, p.Unmatched[1].Detail, `"Priya@Example.com"`)
}

// A new match carries the agent's email and phones (the indexes webhooks resolve
// by) and the CRM user's name.
func TestMatchMappingContent(t *testing.T) {
	t.Parallel()
	p := usermatch.Match(usermatch.Input{MyOperator: []directory.User{usermatchtest.Agent("a1", "asha@example.com", true, "+918586848544", "bad")},
		CRM: []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true)}, Now: usermatchtest.T0})
	require.Len(t, p.Ops, 1)
	assert.Equal(t, &call.Mapping{MyOperatorUserID: "a1", CRMUserID: "101", Email: "asha@example.com", Phones: []string{"+918586848544"},
		Name: "CRM 101", Source: call.MappingEmailMatch, Status: call.MappingActive, UpdatedAt: usermatchtest.T0, UpdatedBy: "sync"}, p.Ops[0].Next)
	assert.NoError(t, p.Ops[0].Next.Validate())
}
