package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// zclient talks to the Zoho sandbox as an adapter (or curl in a demo) would.
type zclient struct {
	t     *testing.T
	url   string
	token string // sent as Authorization: Zoho-oauthtoken <token> when set
}

// startZoho serves a Zoho sandbox. Unless opts seed their own users, it has the
// user zcall's records are owned by: the sandbox refuses an Owner that is not a user.
func startZoho(t *testing.T, opts sandbox.ZohoOptions) (*sandbox.Zoho, *zclient) {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 7
	}
	if opts.Users == nil {
		opts.Users = []sandbox.ZohoUser{{ID: "5725767000000411001", FullName: "Asha Rao", Email: "asha@example.com"}}
	}
	z := sandbox.NewZoho(opts)
	srv := httptest.NewServer(z)
	t.Cleanup(srv.Close)
	return z, &zclient{t: t, url: srv.URL, token: sandbox.ZohoAccessToken}
}

func (c *zclient) as(token string) *zclient { return &zclient{t: c.t, url: c.url, token: token} }

// do sends body (a string, url.Values as a form, or a value to encode as JSON) and
// decodes a JSON answer into a map (nil for an empty body).
func (c *zclient) do(method, path string, body any) (int, map[string]any, http.Header) {
	c.t.Helper()
	var r io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case url.Values:
		r, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		data, err := json.Marshal(b)
		require.NoError(c.t, err)
		r = strings.NewReader(string(data))
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.url+path, r)
	require.NoError(c.t, err)
	if c.token != "" {
		req.Header.Set("Authorization", "Zoho-oauthtoken "+c.token)
	}
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(data) > 0 {
		require.NoError(c.t, json.Unmarshal(data, &out), "body: %s", data)
	}
	return resp.StatusCode, out, resp.Header
}

// zcall is a valid Calls record; edit changes it.
func zcall(callID string, edit func(map[string]any)) map[string]any {
	m := map[string]any{
		"Subject": "Incoming call from +91 97116 36496", "Call_Type": "Inbound",
		"Call_Start_Time": "2026-03-14T14:56:53+05:30", "Call_Duration": "01:35",
		"Owner": map[string]any{"id": "5725767000000411001"}, "Description": "hello\nCall ID: " + callID,
	}
	if edit != nil {
		edit(m)
	}
	return m
}

func data(recs ...map[string]any) map[string]any { return map[string]any{"data": recs} }

// results returns the per-record "data" of a write answer.
func results(t *testing.T, body map[string]any) []map[string]any {
	t.Helper()
	list, ok := body["data"].([]any)
	require.True(t, ok, "no data array: %v", body)
	out := make([]map[string]any, len(list))
	for i, v := range list {
		out[i] = v.(map[string]any)
	}
	return out
}

func TestZohoToken(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	z, c := startZoho(t, sandbox.ZohoOptions{RefreshLimit: 2, TokenTTL: time.Minute, Now: clock})
	anon := c.as("")
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {sandbox.ZohoClientID},
		"client_secret": {sandbox.ZohoClientSecret}, "refresh_token": {sandbox.ZohoRefreshToken}}

	for name, edit := range map[string]func(url.Values){
		"invalid_client": func(v url.Values) { v.Set("client_secret", "nope") },
		"invalid_code":   func(v url.Values) { v.Set("refresh_token", "nope") },
	} {
		bad := url.Values{}
		for k, v := range form {
			bad[k] = v
		}
		edit(bad)
		st, body, _ := anon.do("POST", "/oauth/v2/token", bad)
		assert.Equal(t, http.StatusOK, st, "Zoho answers a refused credential with 200")
		assert.Equal(t, name, body["error"])
	}

	// Query parameters work as well as a form body (Zoho's docs use the query).
	st, body, _ := anon.do("POST", "/oauth/v2/token?"+form.Encode(), nil)
	require.Equal(t, http.StatusOK, st)
	tok, _ := body["access_token"].(string)
	assert.True(t, strings.HasPrefix(tok, "1000."), tok)
	assert.Equal(t, 60.0, body["expires_in"])
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Equal(t, c.url, body["api_domain"])

	st, _, _ = c.as(tok).do("GET", "/crm/v8/Calls", nil)
	assert.Equal(t, http.StatusOK, st, "an issued token works")
	st, _, _ = anon.do("POST", "/oauth/v2/token", form)
	require.Equal(t, http.StatusOK, st)
	st, body, _ = anon.do("POST", "/oauth/v2/token", form)
	assert.Equal(t, http.StatusBadRequest, st, "third refresh in the window")
	assert.Equal(t, "Access Denied", body["error"])
	assert.Equal(t, 2, z.Refreshes())

	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	st, body, _ = c.as(tok).do("GET", "/crm/v8/Calls", nil)
	assert.Equal(t, http.StatusUnauthorized, st, "expired")
	assert.Equal(t, "INVALID_TOKEN", body["code"])

	mu.Lock()
	now = now.Add(10 * time.Minute)
	mu.Unlock()
	st, _, _ = anon.do("POST", "/oauth/v2/token", form)
	assert.Equal(t, http.StatusOK, st, "the window slid")

	s := z.Stats()
	assert.Equal(t, 6, s.ByEndpoint["POST /oauth/v2/token"], "token requests are shown")
	assert.Zero(t, s.Requests, "but are not API calls")
}

func TestZohoAuth(t *testing.T) {
	t.Parallel()
	z, c := startZoho(t, sandbox.ZohoOptions{})
	st, body, _ := c.as("").do("POST", "/crm/v8/Calls", data(zcall("a", nil)))
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, "AUTHENTICATION_FAILURE", body["code"])
	st, body, _ = c.as("1000.forged").do("GET", "/crm/v8/Calls", nil)
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, "INVALID_TOKEN", body["code"])
	assert.Equal(t, "error", body["status"])
	st, _, _ = c.do("POST", "/crm/v8/Calls", data(zcall("a", nil)))
	assert.Equal(t, http.StatusCreated, st, "the static demo token")
	assert.Equal(t, 2, z.Stats().Rejected, "auth failures, listings included")
}

func TestZohoInsertPerRecord(t *testing.T) {
	t.Parallel()
	z, c := startZoho(t, sandbox.ZohoOptions{Users: []sandbox.ZohoUser{{ID: "5725767000000411001", FullName: "Asha Rao", Email: "asha@example.com"}}})
	contact := z.AddContact(sandbox.ZohoPerson{LastName: "Kumar", Phone: "+919711636496"})
	lead := z.AddLead(sandbox.ZohoPerson{LastName: "Lal", Mobile: "9822334455"})

	future := time.Now().Add(6 * time.Hour).Format("2006-01-02T15:04:05-07:00")
	bad := []struct {
		edit          func(map[string]any)
		code, apiName string
	}{
		{func(m map[string]any) { delete(m, "Subject") }, "MANDATORY_NOT_FOUND", "Subject"},
		{func(m map[string]any) { delete(m, "Owner") }, "MANDATORY_NOT_FOUND", "Owner"},
		{func(m map[string]any) { m["Call_Type"] = "Incoming" }, "INVALID_DATA", "Call_Type"},
		{func(m map[string]any) { m["Call_Start_Time"] = "2026-03-14T09:26:53Z" }, "INVALID_DATA", "Call_Start_Time"},
		{func(m map[string]any) { m["Call_Start_Time"] = "14/03/2026 14:56" }, "INVALID_DATA", "Call_Start_Time"},
		// Kaizen #38: "an incorrect Call_Start_Time for a completed call", read as one in the future.
		{func(m map[string]any) { m["Call_Start_Time"] = future }, "INVALID_DATA", "Call_Start_Time"},
		{func(m map[string]any) {
			m["Call_Type"], m["Call_Start_Time"] = "Missed", future
			delete(m, "Call_Duration")
		}, "INVALID_DATA", "Call_Start_Time"},
		{func(m map[string]any) { m["Call_Duration"] = "00:00" }, "INVALID_DATA", "Call_Duration"},
		{func(m map[string]any) { m["Call_Duration"] = "95" }, "INVALID_DATA", "Call_Duration"},
		{func(m map[string]any) { delete(m, "Call_Duration") }, "MANDATORY_NOT_FOUND", "Call_Duration"},
		{func(m map[string]any) { m["Owner"] = map[string]any{"id": 42} }, "INVALID_DATA", "Owner"},
		{func(m map[string]any) { m["Who_Id"] = map[string]any{"id": lead} }, "INVALID_DATA", "Who_Id"},
		{func(m map[string]any) { m["What_Id"] = map[string]any{"id": lead} }, "MANDATORY_NOT_FOUND", "$se_module"},
		{func(m map[string]any) { m["Voice_Recording__s"] = "not a url" }, "INVALID_DATA", "Voice_Recording__s"},
	}
	recs := []map[string]any{
		zcall("good-contact", func(m map[string]any) { m["Who_Id"] = map[string]any{"id": contact} }),
		zcall("good-lead", func(m map[string]any) {
			m["What_Id"], m["$se_module"] = map[string]any{"id": lead}, "Leads"
			m["Voice_Recording__s"] = "https://r.example/a.mp3"
		}),
	}
	for _, b := range bad {
		recs = append(recs, zcall("bad", b.edit))
	}
	st, body, _ := c.do("POST", "/crm/v8/Calls", data(recs...))
	require.Equal(t, http.StatusMultiStatus, st, "mixed results: %v", body)
	res := results(t, body)
	require.Len(t, res, len(recs))
	for i := range 2 {
		assert.Equal(t, "SUCCESS", res[i]["code"])
		assert.Equal(t, "success", res[i]["status"])
		assert.Equal(t, "record added", res[i]["message"])
		assert.IsType(t, "", res[i]["details"].(map[string]any)["id"], "ids are JSON strings")
	}
	for i, b := range bad {
		r := res[i+2]
		assert.Equal(t, b.code, r["code"], "record %d (%s)", i+2, b.apiName)
		assert.Equal(t, "error", r["status"])
		d := r["details"].(map[string]any)
		assert.Equal(t, b.apiName, d["api_name"], "record %d", i+2)
		assert.Equal(t, fmt.Sprintf("$.data[%d].%s", i+2, b.apiName), d["json_path"])
	}

	stored := z.Records()
	require.Len(t, stored, 2)
	assert.Equal(t, sandbox.ZohoRef{ID: "5725767000000411001", Name: "Asha Rao", Email: "asha@example.com"}, stored[0].Owner)
	assert.Equal(t, &sandbox.ZohoRef{ID: contact, Name: "Kumar"}, stored[0].WhoID)
	assert.Nil(t, stored[0].WhatID)
	assert.Equal(t, &sandbox.ZohoRef{ID: lead, Name: "Lal"}, stored[1].WhatID)
	assert.Equal(t, "Leads", stored[1].SEModule)
	assert.Equal(t, 95, stored[1].DurationSecs)

	st, body, _ = c.do("POST", "/crm/v8/Calls", data(zcall("only-bad", func(m map[string]any) { delete(m, "Subject") })))
	assert.Equal(t, http.StatusBadRequest, st, "every record failed")
	assert.Len(t, results(t, body), 1)

	many := make([]map[string]any, 101)
	for i := range many {
		many[i] = zcall(fmt.Sprint(i), nil)
	}
	st, body, _ = c.do("POST", "/crm/v8/Calls", data(many...))
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "LIMIT_EXCEEDED", body["code"])
	st, body, _ = c.do("POST", "/crm/v8/Calls", data())
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "MANDATORY_NOT_FOUND", body["code"])
	st, _, _ = c.do("POST", "/crm/v8/Calls", "{nope")
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Len(t, z.Records(), 2)
}

func TestZohoUpdateListAndDuplicates(t *testing.T) {
	t.Parallel()
	z, c := startZoho(t, sandbox.ZohoOptions{})
	st, body, _ := c.do("POST", "/crm/v8/Calls", data(zcall("dup", nil), zcall("dup", nil), zcall("other", nil)))
	require.Equal(t, http.StatusCreated, st)
	id := results(t, body)[0]["details"].(map[string]any)["id"].(string)

	st, body, _ = c.do("PUT", "/crm/v8/Calls/"+id, data(map[string]any{"Voice_Recording__s": "https://r.example/dup.mp3", "Call_Result": "Interested"}))
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "record updated", results(t, body)[0]["message"])
	st, body, _ = c.do("PUT", "/crm/v8/Calls/"+id, data(map[string]any{"Call_Type": "Outbound"}))
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "INVALID_DATA", results(t, body)[0]["code"])
	st, _, _ = c.do("PUT", "/crm/v8/Calls/"+id, data(map[string]any{"Owner": map[string]any{"id": "999"}}))
	assert.Equal(t, http.StatusBadRequest, st, "a completed call's owner cannot change")
	st, body, _ = c.do("PUT", "/crm/v8/Calls/5725767000000999999", data(map[string]any{"Subject": "x"}))
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "INVALID_DATA", results(t, body)[0]["code"])

	r := z.Records()[0]
	assert.Equal(t, "Inbound", r.CallType)
	assert.Equal(t, "https://r.example/dup.mp3", r.VoiceRecording)
	assert.Equal(t, "Interested", r.CallResult)
	assert.Equal(t, "Incoming call from +91 97116 36496", r.Subject, "fields not sent stay")

	// The listing is Zoho's shape, never faulted nor counted.
	require.NoError(t, z.SetFaults(sandbox.Faults{ErrorRate: 1, Status: 503}))
	st, body, _ = c.do("GET", "/crm/v8/Calls?per_page=2", nil)
	require.Equal(t, http.StatusOK, st)
	assert.Len(t, body["data"], 2)
	assert.Equal(t, map[string]any{"count": 2.0, "more_records": true, "page": 1.0, "per_page": 2.0}, body["info"])
	first := body["data"].([]any)[0].(map[string]any)
	assert.Equal(t, id, first["id"])
	assert.Nil(t, first["Who_Id"], "null, as Zoho writes an empty lookup")
	st, body, _ = c.do("GET", "/crm/v8/Calls?page=2&per_page=2", nil)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, false, body["info"].(map[string]any)["more_records"])
	st, body, _ = c.do("GET", "/crm/v8/Calls/"+id, nil)
	require.Equal(t, http.StatusOK, st)
	assert.Len(t, body["data"], 1)

	s := z.Stats()
	assert.Equal(t, 1, s.Duplicates, "a second record with the same Call ID line")
	assert.Equal(t, 5, s.Requests, "1 insert + 4 updates; listings not counted")
}

func TestZohoSearch(t *testing.T) {
	t.Parallel()
	z, c := startZoho(t, sandbox.ZohoOptions{})
	contact := z.AddContact(sandbox.ZohoPerson{FirstName: "Ravi", LastName: "Kumar", Phone: "9711636496", Mobile: "+919822334455"})
	lead := z.AddLead(sandbox.ZohoPerson{LastName: "Lal", Phone: "+919711636496"})

	st, body, _ := c.do("GET", "/crm/v8/Contacts/search?phone=9711636496", nil)
	require.Equal(t, http.StatusOK, st)
	hits := body["data"].([]any)
	require.Len(t, hits, 1)
	assert.Equal(t, contact, hits[0].(map[string]any)["id"])
	assert.Equal(t, "Ravi Kumar", hits[0].(map[string]any)["Full_Name"])
	st, body, _ = c.do("GET", "/crm/v8/Contacts/search?phone="+url.QueryEscape("+919822334455"), nil)
	require.Equal(t, http.StatusOK, st, "mobile matches too")
	assert.Len(t, body["data"], 1)
	st, body, _ = c.do("GET", "/crm/v8/Contacts/search?phone="+url.QueryEscape("+919711636496"), nil)
	assert.Equal(t, http.StatusNoContent, st, "as typed: E.164 does not find a 10-digit number")
	assert.Nil(t, body)
	st, body, _ = c.do("GET", "/crm/v8/Leads/search?phone="+url.QueryEscape("+919711636496"), nil)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, lead, body["data"].([]any)[0].(map[string]any)["id"])
	st, body, _ = c.do("GET", "/crm/v8/Leads/search", nil)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "REQUIRED_PARAM_MISSING", body["code"])

	st, _, _ = c.do("PUT", "/contacts/"+contact, `{"Last_Name":"Kumar","Phone":"+919711636496"}`)
	require.Equal(t, http.StatusOK, st)
	st, _, _ = c.do("GET", "/crm/v8/Contacts/search?phone="+url.QueryEscape("+919711636496"), nil)
	assert.Equal(t, http.StatusOK, st, "control PUT replaced the contact")
	st, _, _ = c.do("PUT", "/leads/abc", `{}`)
	assert.Equal(t, http.StatusBadRequest, st)
	st, _, _ = c.do("PUT", "/leads/123", `{"Phone_Number":"x"}`)
	assert.Equal(t, http.StatusBadRequest, st, "unknown fields are refused")
	assert.Equal(t, 4, z.Stats().ByEndpoint["GET /crm/v8/Contacts/search"])
	assert.Equal(t, 2, z.Stats().ByEndpoint["GET /crm/v8/Leads/search"])
}

func TestZohoUsers(t *testing.T) {
	t.Parallel()
	z, c := startZoho(t, sandbox.ZohoOptions{Users: []sandbox.ZohoUser{
		{ID: "101", FullName: "Asha Rao", Email: "asha@example.com"},
		{ID: "102", FullName: "Old Timer", Email: "old@example.com", Status: "disabled"},
	}})
	control := c.as("")
	st, u, _ := control.do("PUT", "/users/103", `{"full_name":"Sumit Arya","email":"Sumit.Arya@example.com","role":"Sales Manager","profile":"Standard","mobile":"+918586848544"}`)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "active", u["status"])
	assert.Equal(t, "Sales Manager", u["role"].(map[string]any)["name"])
	st, _, _ = control.do("PUT", "/users/104", `{"full_name":"X","status":"gone"}`)
	assert.Equal(t, http.StatusBadRequest, st)

	list := func(q string) (int, []string, map[string]any) {
		st, body, _ := c.do("GET", "/crm/v8/users"+q, nil)
		var ids []string
		if users, ok := body["users"].([]any); ok {
			for _, u := range users {
				ids = append(ids, u.(map[string]any)["id"].(string))
			}
			return st, ids, body["info"].(map[string]any)
		}
		return st, nil, nil
	}
	st, ids, info := list("?type=AllUsers&per_page=2")
	assert.Equal(t, http.StatusOK, st)
	assert.Equal(t, []string{"101", "102"}, ids)
	assert.Equal(t, true, info["more_records"])
	_, ids, info = list("?type=AllUsers&per_page=2&page=2")
	assert.Equal(t, []string{"103"}, ids)
	assert.Equal(t, false, info["more_records"])
	st, _, _ = list("?type=AllUsers&per_page=2&page=3")
	assert.Equal(t, http.StatusNoContent, st)
	_, ids, _ = list("?type=ActiveUsers")
	assert.Equal(t, []string{"101", "103"}, ids)
	_, ids, _ = list("?type=DeactiveUsers")
	assert.Equal(t, []string{"102"}, ids)
	st, _, _ = list("?type=Everyone")
	assert.Equal(t, http.StatusBadRequest, st)

	st, _, _ = control.do("DELETE", "/users/102", nil)
	assert.Equal(t, http.StatusNoContent, st)
	st, _, _ = control.do("DELETE", "/users/102", nil)
	assert.Equal(t, http.StatusNotFound, st)
	_, ids, _ = list("")
	assert.Equal(t, []string{"101", "103"}, ids)
	assert.Zero(t, z.Stats().Requests, "user listings are not adapter calls")
}

func TestZohoCallNotify(t *testing.T) {
	t.Parallel()
	z, c := startZoho(t, sandbox.ZohoOptions{PhoneBridgeUsers: []sandbox.PhoneBridgeUser{{ZohoUser: "5725767000000411001", Email: "a@x.com"}}})
	ok := url.Values{"type": {"received"}, "state": {"ringing"}, "id": {"n2.1596270949.2175190"},
		"from": {"+919711636496"}, "to": {"+918586848544"}, "zohouser": {"5725767000000411001"}, "start_time": {"2026-03-14 09:26:53"}}

	// Nothing before calltrack is the org's provider; then only for users with click-to-dial.
	st, body, _ := c.do("POST", "/phonebridge/v3/callnotify", ok)
	require.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "PROVIDER_NOT_REGISTERED", body["code"])
	st, body, _ = c.do("GET", "/phonebridge/v3/users", nil)
	assert.Equal(t, "PROVIDER_NOT_REGISTERED", body["code"])
	st, _, _ = c.do("POST", "/phonebridge/v3/integrate", nil)
	require.Equal(t, http.StatusOK, st)
	st, body, _ = c.do("POST", "/phonebridge/v3/callnotify", ok)
	require.Equal(t, http.StatusBadRequest, st, "no click-to-dial registered for the user")
	assert.Equal(t, "INVALID_DATA", body["code"])
	st, body, _ = c.do("POST", "/phonebridge/v3/clicktodial", url.Values{"zohouser": {"nobody"}, "clicktodialuri": {"https://x.example/cb"}})
	assert.Equal(t, http.StatusBadRequest, st, "not a PhoneBridge user")
	st, _, _ = c.do("POST", "/phonebridge/v3/clicktodial", url.Values{"zohouser": {"5725767000000411001"}, "clicktodialuri": {"https://x.example/cb"}})
	require.Equal(t, http.StatusOK, st)

	st, body, _ = c.do("POST", "/phonebridge/v3/callnotify", ok)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, map[string]any{"status": "success", "code": "SUCCESS"}, body)

	for name, edit := range map[string]func(url.Values){
		"missing id":      func(v url.Values) { v.Del("id") },
		"type":            func(v url.Values) { v.Set("type", "incoming") },
		"state":           func(v url.Values) { v.Set("state", "noanswer") }, // a dialed-only state
		"from not E.164":  func(v url.Values) { v.Set("from", "9711636496") },
		"start_time form": func(v url.Values) { v.Set("start_time", "2026-03-14T09:26:53Z") },
	} {
		bad := url.Values{}
		for k, v := range ok {
			bad[k] = append([]string(nil), v...)
		}
		edit(bad)
		st, body, _ := c.do("POST", "/phonebridge/v3/callnotify", bad)
		assert.Equal(t, http.StatusBadRequest, st, name)
		assert.NotEmpty(t, body["code"], name)
	}
	dialed := url.Values{"type": {"dialed"}, "state": {"noanswer"}, "id": {"c2"}, "from": {"+918586848544"}, "to": {"+919711636496"},
		"zohouser": {"5725767000000411001"}}
	st, _, _ = c.do("POST", "/phonebridge/v3/callnotify", dialed)
	require.Equal(t, http.StatusOK, st)
	recs := z.Records()
	require.Len(t, recs, 1, "PhoneBridge logs a call it is told is over")
	assert.Contains(t, recs[0].Description, "Call ID: c2")

	ns := z.Notifications()
	require.Len(t, ns, 2)
	assert.Equal(t, "received", ns[0].Type)
	assert.Equal(t, "ringing", ns[0].State)
	assert.Equal(t, "n2.1596270949.2175190", ns[0].ID)
	assert.Equal(t, "+919711636496", ns[0].From)
	assert.Equal(t, "5725767000000411001", ns[0].ZohoUser)
	assert.Equal(t, "2026-03-14 09:26:53", ns[0].StartTime)
	_, list, _ := c.as("").do("GET", "/notifications", nil)
	assert.Len(t, list["notifications"], 2)
	assert.Equal(t, 9, z.Stats().ByEndpoint["POST /phonebridge/v3/callnotify"])
}

func TestZohoFaultsRateLimitAndStats(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	z, c := startZoho(t, sandbox.ZohoOptions{RateLimit: 2, Now: clock})
	control := c.as("")
	for _, bad := range []string{`{"error_rate":1.5}`, `{"error_rate":0.5,"status":404}`, `{"errorRate":0.5}`, `nope`} {
		st, _, _ := control.do("PUT", "/faults", bad)
		assert.Equal(t, http.StatusBadRequest, st, bad)
	}

	st, _, h := c.do("GET", "/crm/v8/Leads/search?phone=1", nil)
	assert.Equal(t, http.StatusNoContent, st)
	assert.Equal(t, "1", h.Get("X-RateLimit-Remaining"))
	c.do("POST", "/crm/v8/Calls", data(zcall("a", nil)))
	st, body, h := c.do("POST", "/crm/v8/Calls", data(zcall("b", nil)))
	assert.Equal(t, http.StatusTooManyRequests, st)
	assert.Equal(t, "TOO_MANY_REQUESTS", body["code"])
	assert.Equal(t, "1", h.Get("Retry-After"))
	c.do("GET", "/crm/v8/Calls", nil) // not limited, not counted

	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	st, _, _ = control.do("PUT", "/faults", `{"error_rate":1,"status":500,"latency_ms":20}`)
	require.Equal(t, http.StatusOK, st)
	began := time.Now()
	st, body, _ = c.do("POST", "/crm/v8/Calls", data(zcall("c", nil)))
	assert.Equal(t, http.StatusInternalServerError, st)
	assert.Equal(t, "INTERNAL_ERROR", body["code"])
	assert.GreaterOrEqual(t, time.Since(began), 20*time.Millisecond, "latency applies")
	st, _, _ = c.do("GET", "/crm/v8/Calls", nil)
	assert.Equal(t, http.StatusOK, st, "listings are never faulted")

	_, s, _ := control.do("GET", "/stats", nil)
	assert.Equal(t, map[string]any{
		"requests":   4.0,
		"max_rps_1s": 3.0,
		"rejected":   2.0,
		"duplicates": 0.0, "lost": 0.0,
		"by_endpoint": map[string]any{
			"GET /crm/v8/Leads/search": 1.0,
			"POST /crm/v8/Calls":       3.0,
		},
	}, s)

	z.Reset()
	assert.Empty(t, z.Records())
	assert.Zero(t, z.Stats().Requests)
	assert.Zero(t, z.Faults().ErrorRate)
}
