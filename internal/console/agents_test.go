package console

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
)

var unmapAction = regexp.MustCompile(`action="([^"]*/unmap)"`)

// An agent whose id has spaces, "/", "?" or "&" is unmapped with the Agents page's own
// Unmap button.
func TestUnmapEscapedAgentID(t *testing.T) {
	for _, id := range []string{"x y/../z?&a=b", "a b", "100%", "5cd40f6556f2f124"} {
		t.Run(id, func(t *testing.T) {
			f := newFixture(t)
			require.NoError(t, f.ms.Put(t.Context(), "acme", call.Mapping{MyOperatorUserID: id, CRMUserID: "7",
				Source: call.MappingManual, Status: call.MappingActive}))
			c := f.client()
			_, csrf := f.signIn(c, "acme-token")
			_, page := f.get(c, "/console/tenants/acme/agents")
			m := unmapAction.FindStringSubmatch(page)
			require.NotNil(t, m, "the page has the agent's Unmap button")
			res, _ := f.post(c, html.UnescapeString(m[1]), url.Values{"csrf": {csrf}})
			require.Equal(t, http.StatusSeeOther, res.StatusCode)
			_, page = f.get(c, res.Header.Get("Location"))
			assert.Contains(t, page, html.EscapeString("Agent "+id+" is unmapped"))
			_, err := f.ms.Get(t.Context(), "acme", id)
			assert.ErrorIs(t, err, mapping.ErrNotFound)
		})
	}
}

type consoleCRM []directory.User

func (c consoleCRM) Users(context.Context) ([]directory.User, error) { return c, nil }

// The map form answers as the admin API does: a phone another agent has, or a CRM user
// the CRM does not have, is refused in words; a CRM that cannot be asked stores the
// mapping with a note.
func TestMapFormRefusals(t *testing.T) {
	cases := []struct {
		name     string
		form     url.Values
		crmDown  bool
		says     string
		stored   bool
		crmUser  string
		noteSays string
	}{
		{"phone of another agent", url.Values{"agent": {"a2"}, "crm_user": {"1002"}, "phone": {"+918586848544"}},
			false, "918586848544 is already mapped to MyOperator user a1", false, "", ""},
		{"no such CRM user", url.Values{"agent": {"a2"}, "crm_user": {"999999"}}, false, "CRM user 999999 is not one of the tenant", false, "", ""},
		{"a CRM user", url.Values{"agent": {"a2"}, "crm_user": {"1002"}}, false, "Agent a2 is mapped to CRM user 1002", true, "1002", ""},
		{"the CRM does not answer", url.Values{"agent": {"a2"}, "crm_user": {"999999"}}, true, "Agent a2 is mapped to CRM user 999999", true, "999999", "was not checked"},
		{"an overlong agent id", url.Values{"agent": {string(make([]byte, 200))}, "crm_user": {"1002"}}, false, "The agent was not mapped", false, "", ""},
		{"no Kylas user id", url.Values{"agent": {"a2"}, "crm_user": {"sumit"}}, true,
			"crm_user_id is not a user id of the tenant&#39;s CRM: Kylas user ids are whole numbers above 0", false, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.api.CRMUsers = func(*tenant.Tenant) (directory.Source, error) {
				if tc.crmDown {
					return nil, errors.New("the CRM timed out")
				}
				return consoleCRM{{ID: "1001", Active: true}, {ID: "1002", Active: true}}, nil
			}
			require.NoError(t, f.ms.Put(t.Context(), "acme", call.Mapping{MyOperatorUserID: "a1", CRMUserID: "1001",
				Phones: []string{"+918586848544"}, Source: call.MappingManual, Status: call.MappingActive}))
			c := f.client()
			_, csrf := f.signIn(c, "acme-token")
			tc.form.Set("csrf", csrf)
			res, _ := f.post(c, "/console/tenants/acme/agents/map", tc.form)
			require.Equal(t, http.StatusSeeOther, res.StatusCode)
			_, page := f.get(c, res.Header.Get("Location"))
			assert.Contains(t, page, tc.says)
			if tc.noteSays != "" {
				assert.Contains(t, page, tc.noteSays)
			}
			m, err := f.ms.Get(t.Context(), "acme", "a2")
			if !tc.stored {
				assert.ErrorIs(t, err, mapping.ErrNotFound)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.crmUser, m.CRMUserID)
			}
			a1, err := f.ms.Get(t.Context(), "acme", "a1")
			require.NoError(t, err)
			assert.Equal(t, []string{"+918586848544"}, a1.Phones, "the other agent untouched")
		})
	}
}

var formInput = regexp.MustCompile(`<input id="[^"]*" name="(agent|email|phone|uuid)"[^>]*value="([^"]*)"|<input type="hidden" name="(name)" value="([^"]*)"`)

// A mapped agent's Change button opens the map form with the whole mapping: saving it
// with another CRM user keeps the agent's email, uuid, phones and name, which the
// mapping matches calls by (the form replaces the mapping as the admin API's PUT does).
func TestChangeKeepsTheMapping(t *testing.T) {
	f := newFixture(t)
	f.api.CRMUsers = func(*tenant.Tenant) (directory.Source, error) {
		return consoleCRM{{ID: "1001", Active: true}, {ID: "1002", Active: true}}, nil
	}
	require.NoError(t, f.ms.Put(t.Context(), "acme", call.Mapping{MyOperatorUserID: "a1", CRMUserID: "1001", Name: "Sumit Arya",
		Email: "sumit@example.com", MyOperatorUUID: "9e1b2c3d-0000-4000-8000-00000000000a", Phones: []string{"+918586848544", "+919811122233"},
		Source: call.MappingManual, Status: call.MappingActive}))
	c := f.client()
	_, csrf := f.signIn(c, "acme-token")
	_, page := f.get(c, "/console/tenants/acme/agents?agent=a1")
	form := url.Values{"csrf": {csrf}, "crm_user": {"1002"}}
	for _, m := range formInput.FindAllStringSubmatch(page, -1) {
		if m[1] != "" {
			form.Set(m[1], html.UnescapeString(m[2]))
		} else {
			form.Set(m[3], html.UnescapeString(m[4]))
		}
	}
	assert.Equal(t, "+918586848544, +919811122233", form.Get("phone"), "the form shows every phone")
	assert.Contains(t, page, `<option value="1001" selected>`, "the mapping's CRM user picked")
	res, _ := f.post(c, "/console/tenants/acme/agents/map", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	m, err := f.ms.Get(t.Context(), "acme", "a1")
	require.NoError(t, err)
	assert.Equal(t, "1002", m.CRMUserID)
	assert.Equal(t, "sumit@example.com", m.Email)
	assert.Equal(t, "9e1b2c3d-0000-4000-8000-00000000000a", m.MyOperatorUUID)
	assert.Equal(t, []string{"+918586848544", "+919811122233"}, m.Phones)
	assert.Equal(t, "Sumit Arya", m.Name)
}
