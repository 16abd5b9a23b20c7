package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// fakeCRM is a CRM's users API in memory.
type fakeCRM struct {
	mu    sync.Mutex
	users []directory.User
	err   error
	calls int
}

func (f *fakeCRM) Users(context.Context) ([]directory.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return append([]directory.User(nil), f.users...), f.err
}

func (f *fakeCRM) add(u directory.User) {
	f.mu.Lock()
	f.users = append(f.users, u)
	f.mu.Unlock()
}

// apiFixture is the admin API over real Redis with tenants acme (Kylas), zoho (Zoho
// CRM), down (a CRM that does not answer) and nolist (an adapter that lists no users).
type apiFixture struct {
	e    http.Handler
	ms   *mapping.Store
	crms map[string]*fakeCRM
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	env := testenv.New(t)
	reg := tenant.NewRegistry(&tenant.Tenant{ID: "acme", DefaultCountry: "IN", CRM: tenant.CRM{Kind: "kylas"}},
		&tenant.Tenant{ID: "zoho", CRM: tenant.CRM{Kind: "zoho"}}, &tenant.Tenant{ID: "down", CRM: tenant.CRM{Kind: "kylas"}},
		&tenant.Tenant{ID: "nolist", CRM: tenant.CRM{Kind: "kylas"}})
	crms := map[string]*fakeCRM{
		"acme": {users: []directory.User{{ID: "1001", Name: "Sumit Arya", Active: true}, {ID: "1002", Name: "Priya N", Active: true},
			{ID: "1003", Name: "Ex Employee", Active: false}}},
		"zoho": {users: []directory.User{{ID: "5725767000000411001", Name: "Sumit Arya", Active: true}}},
		"down": {err: errors.New("dial tcp: connection refused")},
	}
	ms := mapping.NewStore(env.Redis, env.Prefix)
	api := &API{Auth: &Auth{Tenants: reg, Token: "op-token"}, Tenants: reg, Mappings: ms, Trace: trace.New(env.Redis, env.Prefix),
		Log: zerolog.Nop(), UserCache: &directory.Cache{TTL: 1 << 62},
		CRMUsers: func(t *tenant.Tenant) (directory.Source, error) {
			if c, ok := crms[t.ID]; ok {
				return c, nil
			}
			return nil, errors.New("the kylas adapter cannot list users")
		}}
	e := web.New(zerolog.Nop(), nil, nil)
	api.Register(e)
	return &apiFixture{e: e, ms: ms, crms: crms}
}

// do sends a request to path as it goes on the wire (already escaped).
func (f *apiFixture) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer op-token")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.e.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	}
	return rec.Code, out
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func errorMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

const sumit = `{"crm_user_id":"1001","email":"sumit.arya@example.com","phones":["+918586848544"],"myoperator_uuid":"uuid-sumit"}`

// A phone, email or uuid another agent's mapping has is refused with 409, naming that
// agent, and the other mapping stays as it was.
func TestPutMappingConflict(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		status     int
	}{
		{"same phone", `{"crm_user_id":"1002","phones":["+918586848544"]}`, http.StatusConflict},
		{"same phone, typed nationally", `{"crm_user_id":"1002","phones":["98585 48544","085868 48544"]}`, http.StatusConflict},
		{"same email", `{"crm_user_id":"1002","email":"sumit.arya@example.com"}`, http.StatusConflict},
		{"same uuid", `{"crm_user_id":"1002","myoperator_uuid":"uuid-sumit"}`, http.StatusConflict},
		{"nothing shared", `{"crm_user_id":"1002","email":"priya@example.com","phones":["+919711636496"]}`, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAPIFixture(t)
			status, body := f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/5cd40f6556f2f124", sumit)
			require.Equal(t, http.StatusOK, status, body)
			_, before := f.do(t, http.MethodGet, "/admin/v1/tenants/acme/mappings/5cd40f6556f2f124", "")

			status, body = f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd", tc.body)
			assert.Equal(t, tc.status, status, body)
			_, after := f.do(t, http.MethodGet, "/admin/v1/tenants/acme/mappings/5cd40f6556f2f124", "")
			assert.Equal(t, before, after, "the other mapping untouched")
			got, err := f.ms.Resolve(t.Context(), "acme", call.Agent{Phone: "+918586848544"})
			require.NoError(t, err)
			assert.Equal(t, "5cd40f6556f2f124", got.MyOperatorUserID, "its phone still names it")
			if tc.status == http.StatusOK {
				return
			}
			assert.Equal(t, "mapping_conflict", errorCode(body))
			assert.Contains(t, errorMessage(body), "already mapped to MyOperator user 5cd40f6556f2f124")
			status, _ = f.do(t, http.MethodGet, "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd", "")
			assert.Equal(t, http.StatusNotFound, status, "nothing stored")
		})
	}
}

// The reviewer's sequence: a second agent cannot take Sumit's phone, and deleting that
// agent's mapping leaves Sumit's index entries — his calls and his number stay his.
func TestDeleteLeavesOtherAgentsIndexEntries(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	ctx := t.Context()
	status, body := f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/5cd40f6556f2f124", sumit)
	require.Equal(t, http.StatusOK, status, body)
	status, body = f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd", `{"crm_user_id":"1002","phones":["+918586848544"]}`)
	require.Equal(t, http.StatusConflict, status, body)
	status, body = f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd", `{"crm_user_id":"1002","phones":["+919711636496"]}`)
	require.Equal(t, http.StatusOK, status, body)
	status, _ = f.do(t, http.MethodDelete, "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd", "")
	require.Equal(t, http.StatusNoContent, status)

	for _, a := range []call.Agent{{Phone: "+918586848544"}, {Email: "sumit.arya@example.com"}, {ID: "uuid-sumit"}} {
		got, err := f.ms.Resolve(ctx, "acme", a)
		require.NoError(t, err, "%+v", a)
		assert.Equal(t, "1001", got.CRMUserID)
	}
	isAgent, err := f.ms.IsAgentPhone(ctx, "acme", "+918586848544")
	require.NoError(t, err)
	assert.True(t, isAgent, "a call from Sumit's number is still internal")
}

// A mapping's CRM user must be one of the tenant's CRM users; when the CRM cannot say,
// the mapping is stored with a warning.
func TestPutMappingChecksCRMUser(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, tenant, crmUser string
		status                int
		code, warning         string
	}{
		{"a CRM user", "acme", "1001", http.StatusOK, "", ""},
		{"spaces around it", "acme", " 1002 ", http.StatusOK, "", ""},
		{"no such user", "acme", "999999", http.StatusUnprocessableEntity, "unknown_crm_user", ""},
		{"negative id: no Kylas user id at all", "acme", "-5", http.StatusBadRequest, "invalid_mapping", ""},
		{"a Kylas id on the Zoho tenant", "zoho", "1001", http.StatusUnprocessableEntity, "unknown_crm_user", ""},
		{"a Zoho user", "zoho", "5725767000000411001", http.StatusOK, "", ""},
		{"a deactivated user", "acme", "1003", http.StatusOK, "", "deactivated"},
		{"the CRM does not answer", "down", "999999", http.StatusOK, "", "was not checked"},
		{"the CRM lists no users", "nolist", "999999", http.StatusOK, "", "was not checked"},
		{"empty", "acme", "", http.StatusBadRequest, "invalid_mapping", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAPIFixture(t)
			path := "/admin/v1/tenants/" + tc.tenant + "/mappings/aaaabbbbccccdddd"
			status, body := f.do(t, http.MethodPut, path, `{"crm_user_id":"`+tc.crmUser+`"}`)
			require.Equal(t, tc.status, status, body)
			if tc.status != http.StatusOK {
				assert.Equal(t, tc.code, errorCode(body))
				if tc.code == "unknown_crm_user" {
					assert.Contains(t, errorMessage(body), "CRM user "+tc.crmUser+" is not one of the tenant's users")
				}
				status, _ = f.do(t, http.MethodGet, path, "")
				assert.Equal(t, http.StatusNotFound, status, "nothing stored")
				return
			}
			warning, _ := body["warning"].(string)
			if tc.warning == "" {
				assert.Empty(t, warning)
			} else {
				assert.Contains(t, warning, tc.warning)
			}
			assert.Equal(t, strings.TrimSpace(tc.crmUser), body["crm_user_id"])
		})
	}
}

// What an admin types is held to text a CRM and a console can show: a name or email
// with a NUL (invalid UTF-8 the JSON decoder already turns into U+FFFD), or an email
// that is no address, is refused with 400 and nothing is stored; a plain one is taken.
func TestPutMappingRefusesUnprintableNameAndBadEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body, want string }{
		{"NUL in the name", `{"crm_user_id":"1001","name":"Su\u0000mit"}`, "name has a control or invisible character"},
		{"no address", `{"crm_user_id":"1001","email":"sumit"}`, "is not an address"},
		{"a display name", `{"crm_user_id":"1001","email":"Sumit <sumit@example.com>"}`, "is not an address"},
		{"a long name", `{"crm_user_id":"1001","name":"` + strings.Repeat("a", call.MaxNameLen+1) + `"}`, "at most 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAPIFixture(t)
			path := "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd"
			status, body := f.do(t, http.MethodPut, path, tc.body)
			require.Equal(t, http.StatusBadRequest, status, body)
			assert.Equal(t, "invalid_mapping", errorCode(body))
			assert.Contains(t, errorMessage(body), tc.want)
			status, _ = f.do(t, http.MethodGet, path, "")
			assert.Equal(t, http.StatusNotFound, status, "nothing stored")
		})
	}
	f := newAPIFixture(t)
	status, body := f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd",
		`{"crm_user_id":"1001","name":"Sumit Arya — सुमित","email":"sumit.arya@example.com"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, "sumit.arya@example.com", body["email"])
}

// A CRM user id an admin types is held to the form the tenant's CRM writes its user
// ids in (docs/crm-contracts.md, "User ids"): the adapter refuses any other at write
// time, and every call of the agent would be dead-lettered. Refused with 400
// invalid_mapping naming the field and what is expected, before the CRM is asked,
// and nothing is stored.
func TestPutMappingRefusesCRMUserIDOfAnotherForm(t *testing.T) {
	t.Parallel()
	const (
		kylasWant = "crm_user_id is not a user id of the tenant's CRM: Kylas user ids are whole numbers above 0 in digits, with no sign, space or leading zero, at most 9223372036854775807 (e.g. 1001)"
		zohoWant  = "crm_user_id is not a user id of the tenant's CRM: Zoho CRM user ids are digits only, at most 30 (e.g. 1386586000000078001)"
	)
	for _, tc := range []struct{ name, tenant, id, want string }{
		{"Zoho: a name", "zoho", "sumit.arya", zohoWant},
		{"Zoho: a Kylas-style sign", "zoho", "+5725767000000411001", zohoWant},
		{"Zoho: 31 digits", "zoho", strings.Repeat("5", 31), zohoWant},
		{"Kylas: a name", "acme", "sumit", kylasWant},
		{"Kylas: negative", "acme", "-1", kylasWant},
		{"Kylas: exponent", "acme", "1e3", kylasWant},
		{"Kylas: leading zero", "acme", "01001", kylasWant},
		{"Kylas: zero", "acme", "0", kylasWant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAPIFixture(t)
			path := "/admin/v1/tenants/" + tc.tenant + "/mappings/aaaabbbbccccdddd"
			status, body := f.do(t, http.MethodPut, path, `{"crm_user_id":"`+tc.id+`"}`)
			require.Equal(t, http.StatusBadRequest, status, body)
			assert.Equal(t, map[string]any{"error": map[string]any{"code": "invalid_mapping", "message": tc.want}}, body)
			crm := f.crms[tc.tenant]
			crm.mu.Lock()
			defer crm.mu.Unlock()
			assert.Zero(t, crm.calls, "the CRM was not asked")
			status, _ = f.do(t, http.MethodGet, path, "")
			assert.Equal(t, http.StatusNotFound, status, "nothing stored")
		})
	}
	f := newAPIFixture(t)
	status, body := f.do(t, http.MethodPut, "/admin/v1/tenants/zoho/mappings/aaaabbbbccccdddd", `{"crm_user_id":" 5725767000000411001 "}`)
	require.Equal(t, http.StatusOK, status, "a Zoho user id, spaces around it trimmed as before: %v", body)
	assert.Equal(t, "5725767000000411001", body["crm_user_id"])
}

// The CRM's users are kept a while; a user created in the CRM since is found by
// listing again, not refused.
func TestPutMappingFindsNewCRMUser(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	status, body := f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/a1", `{"crm_user_id":"1001"}`)
	require.Equal(t, http.StatusOK, status, body)
	status, body = f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/a2", `{"crm_user_id":"1002"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, 1, f.crms["acme"].calls, "listed once, then kept")
	f.crms["acme"].add(directory.User{ID: "1004", Name: "New Hire", Active: true})
	status, body = f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/a3", `{"crm_user_id":"1004"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, 2, f.crms["acme"].calls)
}

// Agent ids with any printable characters go through PUT, GET and DELETE escaped as
// a client escapes a path segment; ids too long or with control characters are refused.
func TestAgentIDInPath(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	for _, id := range []string{"5cd40f6556f2f124", "a b", "x y/../z?&a=b", "100%", "agent#1", "agént"} {
		t.Run(id, func(t *testing.T) {
			path := "/admin/v1/tenants/acme/mappings/" + url.PathEscape(id)
			status, body := f.do(t, http.MethodPut, path, `{"crm_user_id":"1001"}`)
			require.Equal(t, http.StatusOK, status, body)
			assert.Equal(t, id, body["myoperator_user_id"])
			status, body = f.do(t, http.MethodGet, path, "")
			require.Equal(t, http.StatusOK, status, body)
			assert.Equal(t, id, body["myoperator_user_id"])
			_, err := f.ms.Get(t.Context(), "acme", id)
			require.NoError(t, err, "stored under the id itself")
			status, body = f.do(t, http.MethodDelete, path, "")
			require.Equal(t, http.StatusNoContent, status, body)
			status, _ = f.do(t, http.MethodGet, path, "")
			assert.Equal(t, http.StatusNotFound, status)
		})
	}
	bad := map[string]string{
		"3,000 characters": strings.Repeat("a", 3000),
		"129 bytes":        strings.Repeat("a", call.MaxAgentIDLen+1),
		"a NUL":            "a\x00b",
		"a newline":        "a\nb",
		"an escape":        "a\x1b[31mb",
	}
	for name, id := range bad {
		t.Run(name, func(t *testing.T) {
			path := "/admin/v1/tenants/acme/mappings/" + url.PathEscape(id)
			for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
				status, body := f.do(t, method, path, `{"crm_user_id":"1001"}`)
				assert.Equal(t, http.StatusBadRequest, status, "%s %v", method, body)
				assert.Equal(t, "invalid_agent_id", errorCode(body), method)
			}
			list, err := f.ms.List(t.Context(), "acme")
			require.NoError(t, err)
			for _, m := range list {
				assert.NotEqual(t, id, m.MyOperatorUserID)
			}
		})
	}
}

// A body with anything after its one JSON value is a 400 invalid_json and nothing is
// stored, not a mapping stored from the part that parsed.
func TestPutMappingRefusesTrailingData(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	for _, body := range []string{`{"crm_user_id":"1001"}<html>`, `{"crm_user_id":"1001"}{"crm_user_id":"1002"}`} {
		status, answer := f.do(t, http.MethodPut, "/admin/v1/tenants/acme/mappings/5cd40f6556f2f124", body)
		assert.Equal(t, http.StatusBadRequest, status, body)
		assert.Equal(t, "invalid_json", errorCode(answer), body)
		assert.Contains(t, errorMessage(answer), "unexpected data after the JSON value", body)
	}
	status, _ := f.do(t, http.MethodGet, "/admin/v1/tenants/acme/mappings/5cd40f6556f2f124", "")
	assert.Equal(t, http.StatusNotFound, status, "nothing stored")
}

// A wrong method on an admin route is 405 with Allow and the JSON error body (the
// group's catch-all used to answer 404 "no such route"), after the token is checked;
// an unknown admin path is still 404.
func TestWrongMethodIs405(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodPatch, "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd", http.StatusMethodNotAllowed, "OPTIONS, DELETE, GET, PUT"},
		{http.MethodPost, "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd", http.StatusMethodNotAllowed, "OPTIONS, DELETE, GET, PUT"},
		{http.MethodDelete, "/admin/v1/tenants/acme/mappings", http.StatusMethodNotAllowed, "OPTIONS, GET"},
		{http.MethodPost, "/admin/v1/tenants/acme/calls/n2.1", http.StatusMethodNotAllowed, "OPTIONS, GET"},
		{http.MethodPut, "/admin/v1/tenants/acme/webhooks", http.StatusMethodNotAllowed, "OPTIONS, GET"},
		{http.MethodPost, "/admin/v1/tenants", http.StatusMethodNotAllowed, "OPTIONS, GET"},
		{http.MethodGet, "/admin/v1/tenants/acme/nothing", http.StatusNotFound, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(sumit))
			req.Header.Set("Authorization", "Bearer op-token")
			rec := httptest.NewRecorder()
			f.e.ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			assert.Equal(t, tc.allow, rec.Header().Get(echo.HeaderAllow))
			if tc.status == http.StatusMethodNotAllowed {
				assert.JSONEq(t, `{"error":{"code":"method_not_allowed","message":"`+tc.method+` is not allowed here; allowed: `+tc.allow+`"}}`, rec.Body.String())
			}
		})
	}
	req := httptest.NewRequest(http.MethodPatch, "/admin/v1/tenants/acme/mappings/aaaabbbbccccdddd", nil)
	rec := httptest.NewRecorder()
	f.e.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "the token is checked first: %s", rec.Body)
}
