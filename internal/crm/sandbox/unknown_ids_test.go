package sandbox_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// The sandboxes refuse what names a record or user they do not have, as the real
// services do: a mistyped fallback owner fails in dev, not first in production.

func TestKylasRefusesUnknownRelatedRecordsAndUsers(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{KeyUserID: 42})
	lead := k.AddLead(sandbox.KylasPerson{LastName: "Lal"})
	plain := func(related any) map[string]any {
		b := plainBody()
		b["relatedTo"] = related
		return b
	}
	for name, tc := range map[string]struct {
		path  string
		body  map[string]any
		field string
	}{
		// The error is named as the body has relatedTo: an object on the plain route.
		"plain: no such lead":   {"/v1/call-logs", plain(map[string]any{"id": 99999, "entity": "lead"}), "relatedTo.id"},
		"plain: a contact's id": {"/v1/call-logs", plain(map[string]any{"id": lead, "entity": "contact"}), "relatedTo.id"},
		"plain: no deals kept":  {"/v1/call-logs", plain(map[string]any{"id": lead, "entity": "deal"}), "relatedTo.id"},
		"sync: a list, no such lead": {"/v1/call-logs/sync", func() map[string]any {
			b := syncBody(42, "u")
			b["relatedTo"] = []any{map[string]any{"id": 99999, "entity": "lead"}}
			return b
		}(), "relatedTo[0].id"},
		"sync: owner not a user": {"/v1/call-logs/sync", syncBody(424242, "u"), "ownerId"},
		"sync: no such contact": {"/v1/call-logs/sync", func() map[string]any {
			b := syncBody(42, "u")
			b["relatedTo"] = map[string]any{"id": 99999, "entity": "contact"}
			return b
		}(), "relatedTo.id"},
		"lead: owner not a user": {"/v1/leads", map[string]any{"lastName": "Kumar", "ownerId": 424242}, "ownerId"},
		"task: assignee not a user": {"/v1/tasks", map[string]any{"name": "Call back", "dueDate": "2026-03-15T09:00:00Z",
			"assignedTo": 424242, "type": 501, "status": 601, "priority": 702}, "assignedTo"},
		"task: no such lead": {"/v1/tasks", map[string]any{"name": "Call back", "dueDate": "2026-03-15T09:00:00Z",
			"assignedTo": 42, "type": 501, "status": 601, "priority": 702,
			"relation": []any{map[string]any{"targetEntityId": 99999, "targetEntityType": "LEAD"}}}, "relation[0].targetEntityId"},
	} {
		st, e, _ := c.do("POST", tc.path, tc.body)
		assert.Equal(t, http.StatusBadRequest, st, name)
		assert.Equal(t, "invalid_request", e["code"], name)
		assert.Equal(t, []string{tc.field}, fieldsOf(e), name)
	}
	assert.Empty(t, k.Records())
	assert.Empty(t, k.Tasks())
	assert.Len(t, k.Leads(), 1)

	// A sync record's owner cannot be changed to a user that does not exist either.
	st, rec, _ := c.do("POST", "/v1/call-logs/sync", syncBody(42, "u"))
	require.Equal(t, http.StatusCreated, st, "%v", rec)
	st, e, _ := c.do("PUT", "/v1/call-logs/"+jsonID(rec), syncBody(424242, "u"))
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, []string{"ownerId"}, fieldsOf(e))

	// What exists is accepted, and the plain route's owner is the key's user.
	st, rec, _ = c.do("POST", "/v1/call-logs", plain(map[string]any{"id": lead, "entity": "lead"}))
	require.Equal(t, http.StatusCreated, st, "%v", rec)
	assert.Equal(t, map[string]any{"id": 42.0, "name": "Asha Rao"}, rec["owner"])
}

func TestKylasLeadsShowOwnerAndSource(t *testing.T) {
	t.Parallel()
	_, c := start(t, sandbox.KylasOptions{KeyUserID: 43})
	st, lead, _ := c.do("POST", "/v1/leads", map[string]any{"lastName": "Kumar", "ownerId": 42, "source": 7,
		"phoneNumbers": []any{map[string]any{"type": "MOBILE", "code": "IN", "value": "9711636496", "dialCode": "+91", "primary": true}}})
	require.Equal(t, http.StatusCreated, st, "%v", lead)
	st, byKey, _ := c.do("POST", "/v1/leads", map[string]any{"lastName": "Inbound"})
	require.Equal(t, http.StatusCreated, st, "%v", byKey)

	st, got, _ := c.do("GET", "/v1/leads/"+jsonID(lead), nil)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, 42.0, got["ownerId"])
	assert.Equal(t, map[string]any{"id": 42.0, "name": "Asha Rao"}, got["owner"])
	assert.Equal(t, 7.0, got["source"])
	st, _, _ = c.do("GET", "/v1/leads/99999", nil)
	assert.Equal(t, http.StatusNotFound, st)

	_, pg, _ := c.do("GET", "/v1/leads", nil)
	byID := map[string]map[string]any{}
	for _, l := range pg["content"].([]any) {
		m := l.(map[string]any)
		byID[jsonID(m)] = m
	}
	require.Contains(t, byID, jsonID(lead))
	assert.Equal(t, 42.0, byID[jsonID(lead)]["ownerId"], "the listing shows the owner")
	assert.Equal(t, 7.0, byID[jsonID(lead)]["source"])
	assert.Equal(t, 43.0, byID[jsonID(byKey)]["ownerId"], "no ownerId: the key's user owns it")
}

func TestZohoRefusesUnknownOwnersAndRelatedRecords(t *testing.T) {
	t.Parallel()
	z, c := startZoho(t, sandbox.ZohoOptions{})
	lead := z.AddLead(sandbox.ZohoPerson{LastName: "Lal"})
	check := func(name, path string, rec map[string]any, apiName, msg string) {
		t.Helper()
		st, body, _ := c.do("POST", path, data(rec))
		require.Equal(t, http.StatusBadRequest, st, name)
		r := results(t, body)[0]
		assert.Equal(t, "INVALID_DATA", r["code"], name)
		assert.Equal(t, msg, r["message"], name)
		d := r["details"].(map[string]any)
		assert.Equal(t, apiName, d["api_name"], name)
		assert.Equal(t, fmt.Sprintf("$.data[0].%s", apiName), d["json_path"], name)
	}
	check("call owner", "/crm/v8/Calls", zcall("a", func(m map[string]any) { m["Owner"] = map[string]any{"id": "999"} }),
		"Owner", "the id given seems to be invalid")
	check("call related to an account the sandbox does not have", "/crm/v8/Calls", zcall("b", func(m map[string]any) {
		m["What_Id"], m["$se_module"] = map[string]any{"id": lead}, "Accounts"
	}), "What_Id", "the related id given seems to be invalid")
	task := map[string]any{"Subject": "Call back", "Due_Date": "2026-03-15", "Owner": map[string]any{"id": "999"}}
	check("task owner", "/crm/v8/Tasks", task, "Owner", "the id given seems to be invalid")
	check("lead owner", "/crm/v8/Leads", map[string]any{"Last_Name": "Inbound", "Owner": map[string]any{"id": "999"}},
		"Owner", "the id given seems to be invalid")
	assert.Empty(t, z.Records())
	assert.Empty(t, z.Tasks())
	assert.Len(t, z.Leads(), 1)
}

func TestZohoLeadsShowOwnerSourceAndTag(t *testing.T) {
	t.Parallel()
	_, c := startZoho(t, sandbox.ZohoOptions{})
	st, body, _ := c.do("POST", "/crm/v8/Leads", data(
		map[string]any{"Last_Name": "Inbound +919711636496", "Mobile": "+919711636496", "Lead_Source": "Cold Call",
			"Tag": []any{map[string]any{"name": "calltrack"}}, "Owner": map[string]any{"id": "5725767000000411001"}},
		map[string]any{"Last_Name": "No owner given"}))
	require.Equal(t, http.StatusCreated, st, "%v", body)
	st, body, _ = c.do("GET", "/crm/v8/Leads", nil)
	require.Equal(t, http.StatusOK, st)
	list := body["data"].([]any)
	require.Len(t, list, 2)
	first, second := list[0].(map[string]any), list[1].(map[string]any)
	owner := map[string]any{"id": "5725767000000411001", "name": "Asha Rao", "email": "asha@example.com"}
	assert.Equal(t, owner, first["Owner"])
	assert.Equal(t, "Cold Call", first["Lead_Source"])
	assert.Equal(t, []any{map[string]any{"name": "calltrack"}}, first["Tag"])
	assert.Equal(t, owner, second["Owner"], "no Owner: the token's user owns it")
}

// A lead or contact deleted (or merged, or converted) by a user is gone: a write still
// naming it is refused as one naming an id that never existed (the stale cached party
// calltrack must resolve again), and the control endpoints delete them in dev.
func TestKylasRefusesDeletedLeadsAndContacts(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{KeyUserID: 42})
	control := &client{t: t, url: c.url}
	lead := k.AddLead(sandbox.KylasPerson{LastName: "Lal"})
	for _, tc := range []struct {
		name, entity string
		id           int64
		del          func() bool
	}{
		{"lead, by Go", "lead", lead, func() bool { return k.DeleteLead(lead) }},
		{"contact, by the control endpoint", "contact", 101, func() bool {
			st, _, _ := control.do("DELETE", "/contacts/101", nil)
			return st == http.StatusNoContent
		}},
	} {
		b := syncBody(42, "u-"+tc.entity)
		b["relatedTo"] = map[string]any{"id": tc.id, "entity": tc.entity}
		st, rec, _ := c.do("POST", "/v1/call-logs/sync", b)
		require.Equal(t, http.StatusCreated, st, "%s: %v", tc.name, rec)
		require.True(t, tc.del(), tc.name)
		st, e, _ := c.do("POST", "/v1/call-logs/sync", b)
		assert.Equal(t, http.StatusBadRequest, st, tc.name)
		assert.Equal(t, "invalid_request", e["code"], tc.name)
		assert.Equal(t, []string{"relatedTo.id"}, fieldsOf(e), "%s: named as the body has it, an object", tc.name)
		assert.Contains(t, fmt.Sprint(e["fieldErrors"]), fmt.Sprintf("no %s with id %d", tc.entity, tc.id), tc.name)
	}
	assert.Len(t, k.Records(), 2, "records related before the delete stay")
	assert.Empty(t, k.Leads())
	assert.False(t, k.DeleteLead(lead), "already gone")
	st, e, _ := control.do("DELETE", "/leads/99999", nil)
	assert.Equal(t, http.StatusNotFound, st)
	assert.Equal(t, "not_found", e["code"])
}

func TestZohoRefusesDeletedLeadsAndContacts(t *testing.T) {
	t.Parallel()
	z, c := startZoho(t, sandbox.ZohoOptions{})
	control := &zclient{t: t, url: c.url}
	lead := z.AddLead(sandbox.ZohoPerson{LastName: "Lal"})
	contact := z.AddContact(sandbox.ZohoPerson{LastName: "Shah"})
	for _, tc := range []struct {
		name, field string
		rel         func(map[string]any)
		del         func() bool
	}{
		{"lead, by Go", "What_Id", func(m map[string]any) { m["What_Id"], m["$se_module"] = map[string]any{"id": lead}, "Leads" },
			func() bool { return z.DeleteLead(lead) }},
		{"contact, by the control endpoint", "Who_Id", func(m map[string]any) { m["Who_Id"] = map[string]any{"id": contact} },
			func() bool {
				st, _, _ := control.do("DELETE", "/contacts/"+contact, nil)
				return st == http.StatusNoContent
			}},
	} {
		st, body, _ := c.do("POST", "/crm/v8/Calls", data(zcall("a-"+tc.field, tc.rel)))
		require.Equal(t, http.StatusCreated, st, "%s: %v", tc.name, body)
		require.True(t, tc.del(), tc.name)
		st, body, _ = c.do("POST", "/crm/v8/Calls", data(zcall("b-"+tc.field, tc.rel)))
		require.Equal(t, http.StatusBadRequest, st, tc.name)
		r := results(t, body)[0]
		assert.Equal(t, "INVALID_DATA", r["code"], tc.name)
		assert.Equal(t, "the related id given seems to be invalid", r["message"], tc.name)
		assert.Equal(t, tc.field, r["details"].(map[string]any)["api_name"], tc.name)
	}
	assert.Len(t, z.Records(), 2, "calls related before the delete stay")
	assert.Empty(t, z.Leads())
	st, _, _ := control.do("DELETE", "/leads/"+lead, nil)
	assert.Equal(t, http.StatusNotFound, st)
}
