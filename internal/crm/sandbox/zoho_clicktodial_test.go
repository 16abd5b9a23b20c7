package sandbox_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// clicktodialerror, each rule (Zoho PhoneBridge v3, "Click to Dial Error API"), and a
// click posted to the registered URI with the registered parameters filled in.
func TestZohoClickToDial(t *testing.T) {
	t.Parallel()
	const pb = "5725767000000411001"
	z, c := startZoho(t, sandbox.ZohoOptions{PhoneBridgeUsers: []sandbox.PhoneBridgeUser{{ZohoUser: pb, Email: "a@x.com"}}})
	ok := url.Values{"code": {"notavailable"}, "from": {"+918586848544"}, "to": {"+919711636496"}, "zohouser": {pb}, "message": {"no agent"}}

	st, body, _ := c.do("POST", "/phonebridge/v3/clicktodialerror", ok)
	require.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "PROVIDER_NOT_REGISTERED", body["code"])
	st, _, _ = c.do("POST", "/phonebridge/v3/integrate", nil)
	require.Equal(t, http.StatusOK, st)

	for name, tc := range map[string]struct {
		edit func(url.Values)
		code string
	}{
		"no code":          {func(v url.Values) { v.Del("code") }, "REQUIRED_PARAM_MISSING"},
		"no from":          {func(v url.Values) { v.Del("from") }, "REQUIRED_PARAM_MISSING"},
		"no to":            {func(v url.Values) { v.Del("to") }, "REQUIRED_PARAM_MISSING"},
		"unknown code":     {func(v url.Values) { v.Set("code", "failed") }, "INVALID_DATA"},
		"from not E.164":   {func(v url.Values) { v.Set("from", "8586848544") }, "INVALID_DATA"},
		"to not E.164":     {func(v url.Values) { v.Set("to", "09711636496") }, "INVALID_DATA"},
		"unknown zohouser": {func(v url.Values) { v.Set("zohouser", "nobody") }, "INVALID_DATA"},
	} {
		v := url.Values{}
		for k, vs := range ok {
			v[k] = vs
		}
		tc.edit(v)
		st, body, _ := c.do("POST", "/phonebridge/v3/clicktodialerror", v)
		assert.Equal(t, http.StatusBadRequest, st, name)
		assert.Equal(t, tc.code, body["code"], name)
	}
	assert.Empty(t, z.ClickToDialErrors())
	st, body, _ = c.do("POST", "/phonebridge/v3/clicktodialerror", ok)
	require.Equal(t, http.StatusOK, st, "%v", body)
	got := z.ClickToDialErrors()
	require.Len(t, got, 1)
	assert.Equal(t, "notavailable", got[0].Code)
	assert.Equal(t, "+918586848544", got[0].From)

	// A click: PhoneBridge posts the registered parameters to the registered URI.
	var form url.Values
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ = url.ParseQuery(string(b))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "dialing"})
	}))
	t.Cleanup(provider.Close)
	_, err := z.Click(context.Background(), pb, "+919711636496")
	assert.Error(t, err, "no click-to-dial registered yet")
	st, _, _ = c.do("POST", "/phonebridge/v3/clicktodial", url.Values{"zohouser": {pb}, "clicktodialuri": {provider.URL},
		"clicktodialparam":   {`[{"name":"tonumber","value":"$to"},{"name":"zohouser","value":"$zohouser"}]`},
		"authorizationparam": {`{"name":"token","value":"t0k"}`}})
	require.Equal(t, http.StatusOK, st)
	res, err := z.Click(context.Background(), pb, "+919711636496")
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, res.Status)
	assert.JSONEq(t, `{"status":"dialing"}`, string(res.Body))
	assert.Equal(t, url.Values{"tonumber": {"+919711636496"}, "zohouser": {pb}, "token": {"t0k"}}, form)
}
