package sandbox_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// fieldsOf lists the fields of a Kylas error's fieldErrors.
func fieldsOf(e map[string]any) []string {
	var out []string
	list, _ := e["fieldErrors"].([]any)
	for _, f := range list {
		out = append(out, f.(map[string]any)["field"].(string))
	}
	return out
}

func TestKylasSyncNeedsTheOAuthToken(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	keyOnly := &client{t: t, url: c.url, key: c.key}
	st, e, _ := keyOnly.do("POST", "/v1/call-logs/sync", syncBody(42, "u"))
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, "unauthorized", e["code"])
	wrong := &client{t: t, url: c.url, key: c.key, bearer: "stolen"}
	st, _, _ = wrong.do("POST", "/v1/call-logs/sync", syncBody(42, "u"))
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Empty(t, k.Records())
}

func TestKylasPlainCreateRequiredFields(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	plain := plainBody
	for _, field := range []string{"outcome", "startTime", "phoneNumber", "callType", "relatedTo"} {
		b := plain()
		delete(b, field)
		st, e, _ := c.do("POST", "/v1/call-logs", b)
		assert.Equal(t, http.StatusBadRequest, st, field)
		assert.Equal(t, "invalid_request", e["code"], field)
		assert.Contains(t, fieldsOf(e), field)
	}
	// A recording in the wrong shape is one error: its valid URL is not also refused.
	b := plain()
	b["callRecording"] = "https://r.example/a.mp3"
	st, e, _ := c.do("POST", "/v1/call-logs", b)
	assert.Equal(t, http.StatusBadRequest, st, "the plain route takes the recording as an object")
	assert.Equal(t, []string{"callRecording"}, fieldsOf(e))
	b = syncBody(42, "u")
	b["callRecording"] = map[string]any{"url": "https://r.example/a.mp3"}
	st, e, _ = c.do("POST", "/v1/call-logs/sync", b)
	assert.Equal(t, http.StatusBadRequest, st, "the sync route takes the recording as a URL")
	assert.Equal(t, []string{"callRecording"}, fieldsOf(e))
	b = plain()
	b["callRecording"] = map[string]any{"url": "ftp://r.example/a.mp3", "fileName": "a.mp3"}
	st, e, _ = c.do("POST", "/v1/call-logs", b)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, []string{"callRecording.url"}, fieldsOf(e), "the right shape with a bad URL")
	assert.Empty(t, k.Records())

	st, rec, _ := c.do("POST", "/v1/call-logs", plain())
	require.Equal(t, http.StatusCreated, st, "%v", rec)
	// Its PUT is a full replace with the same required fields.
	b = plain()
	delete(b, "relatedTo")
	st, e, _ = c.do("PUT", "/v1/call-logs/"+jsonID(rec), b)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Contains(t, fieldsOf(e), "relatedTo")
}

func jsonID(m map[string]any) string { return strconv.FormatInt(int64(m["id"].(float64)), 10) }

func TestKylasCreateLead(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	good := func() map[string]any {
		return map[string]any{"firstName": "Ravi", "lastName": "Kumar", "ownerId": 42, "source": 7,
			"phoneNumbers": []any{map[string]any{"type": "MOBILE", "code": "IN", "value": "9711636496", "dialCode": "+91", "primary": true}}}
	}
	for name, tc := range map[string]struct {
		edit  func(map[string]any)
		field string
	}{
		"no last name":      {func(b map[string]any) { delete(b, "lastName") }, "lastName"},
		"bad phone type":    {func(b map[string]any) { b["phoneNumbers"].([]any)[0].(map[string]any)["type"] = "CELL" }, "phoneNumbers[0].type"},
		"dial code as code": {func(b map[string]any) { b["phoneNumbers"].([]any)[0].(map[string]any)["code"] = "+91" }, "phoneNumbers[0].code"},
		"no primary":        {func(b map[string]any) { b["phoneNumbers"].([]any)[0].(map[string]any)["primary"] = false }, "phoneNumbers"},
		"source by name":    {func(b map[string]any) { b["source"] = "Phone" }, "source"},
	} {
		b := good()
		tc.edit(b)
		st, e, _ := c.do("POST", "/v1/leads", b)
		assert.Equal(t, http.StatusBadRequest, st, name)
		assert.Contains(t, fieldsOf(e), tc.field, name)
	}
	st, lead, _ := c.do("POST", "/v1/leads", good())
	require.Equal(t, http.StatusCreated, st, "%v", lead)
	p, meta, ok := k.Lead(int64(lead["id"].(float64)))
	require.True(t, ok)
	assert.Equal(t, "Kumar", p.LastName)
	assert.Equal(t, sandbox.KylasLeadIn{OwnerID: 42, Source: 7}, meta)
	// The new lead is found by phone.
	_, hits := search(c, "lead", "9711636496")
	assert.Len(t, hits, 1)
}

// Every call log needs a phoneNumber, on the sync route too; no source gives it a
// format, so a withheld caller's "anonymous" (or the adapter's placeholder) is taken
// and only a missing or blank one is refused (docs/crm-contracts.md, "Kylas: withheld
// numbers").
func TestKylasPhoneNumberRequired(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	for name, v := range map[string]any{"missing": nil, "empty": "", "blank": "  "} {
		b := syncBody(42, "blank-"+name)
		delete(b, "relatedTo")
		if v == nil {
			delete(b, "phoneNumber")
		} else {
			b["phoneNumber"] = v
		}
		st, e, _ := c.do("POST", "/v1/call-logs/sync", b)
		assert.Equal(t, http.StatusBadRequest, st, name)
		assert.Equal(t, []string{"phoneNumber"}, fieldsOf(e), name)
	}
	assert.Empty(t, k.Records())
	for _, v := range []string{"anonymous", "unknown", "+1234"} {
		b := syncBody(42, "withheld-"+v)
		delete(b, "relatedTo")
		b["phoneNumber"], b["originator"] = v, v
		st, rec, _ := c.do("POST", "/v1/call-logs/sync", b)
		require.Equal(t, http.StatusCreated, st, "%v", rec)
		assert.Equal(t, v, rec["phoneNumber"])
	}
	assert.Len(t, k.Records(), 3)
}

// The plain route takes the forms kylastech/kylas-crm-mcp-server documents and no
// others: relatedTo one object (registry/call_log.yaml), times in UTC "…Z"
// (entities/call_log.py: "startTime: UTC ISO datetime (e.g. '2024-01-15T08:00:00.000Z')"),
// on create and on the PUT that replaces its record. The sync route, whose body has no
// public source, still takes a list and any offset.
func TestKylasPlainRouteDocumentedForms(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	for name, tc := range map[string]struct {
		edit  func(map[string]any)
		field string
	}{
		"relatedTo a list":   {func(b map[string]any) { b["relatedTo"] = []any{b["relatedTo"]} }, "relatedTo"},
		"startTime with IST": {func(b map[string]any) { b["startTime"] = "2026-03-14T14:56:53+05:30" }, "startTime"},
		"startTime zoneless": {func(b map[string]any) { b["startTime"] = "2026-03-14T09:26:53" }, "startTime"},
		"endTime with IST":   {func(b map[string]any) { b["endTime"] = "2026-03-14T14:58:28.000+05:30" }, "endTime"},
	} {
		b := plainBody()
		tc.edit(b)
		st, e, _ := c.do("POST", "/v1/call-logs", b)
		assert.Equal(t, http.StatusBadRequest, st, name)
		assert.Equal(t, "invalid_request", e["code"], name)
		assert.Equal(t, []string{tc.field}, fieldsOf(e), name)
	}
	assert.Empty(t, k.Records())

	st, rec, _ := c.do("POST", "/v1/call-logs", plainBody())
	require.Equal(t, http.StatusCreated, st, "%v", rec)
	b := plainBody()
	b["startTime"] = "2026-03-14T14:56:53+05:30"
	st, e, _ := c.do("PUT", "/v1/call-logs/"+jsonID(rec), b)
	assert.Equal(t, http.StatusBadRequest, st, "its PUT holds the same forms")
	assert.Equal(t, []string{"startTime"}, fieldsOf(e))

	sync := syncBody(42, "sync-list")
	sync["relatedTo"] = []any{sync["relatedTo"]}
	sync["startTime"] = "2026-03-14T14:56:53+05:30"
	st, rec, _ = c.do("POST", "/v1/call-logs/sync", sync)
	require.Equal(t, http.StatusCreated, st, "%v", rec)
	assert.Equal(t, "2026-03-14T09:26:53.000Z", rec["startTime"])
	assert.Len(t, k.Records(), 2)
}
