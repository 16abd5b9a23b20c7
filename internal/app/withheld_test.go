package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/kylas"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
)

// A call from a withheld, anonymous, empty or garbled number goes from the webhook to
// Kylas like any other (ingest → Kafka → writer → the Kylas sandbox, as strict as the
// documented API): one call log each, owned by the mapped user, its phoneNumber what
// MyOperator sent (kylas.WithheldNumber when it sent nothing), related to no one, and
// no lead made. Before, each was answered 200 and dead-lettered: Kylas refuses a call
// log without phoneNumber.
func TestDevWritesWithheldCallers(t *testing.T) {
	d := runDev(t)
	do := func(method, path string, body any, token string) *http.Response {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, d.Base+path, r)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return res
	}
	sample := func(path string) map[string]any {
		t.Helper()
		res := do(http.MethodGet, path, nil, "")
		defer res.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
		return m
	}
	kylasList := func(path string, out any) bool {
		req, _ := http.NewRequest(http.MethodGet, d.Base+"/sandbox/kylas"+path, nil)
		req.Header.Set("api-key", "demo-crm-key")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		return res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(out) == nil
	}
	var leads struct {
		TotalElements int `json:"totalElements"`
	}
	require.True(t, kylasList("/v1/leads?page=1&size=100", &leads))
	leadsBefore := leads.TotalElements

	res := do(http.MethodPut, "/admin/v1/tenants/demo/mappings/5cd40f6556f2f124",
		map[string]string{"crm_user_id": "1001", "email": "sumit.arya@example.com"}, "demo-admin")
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	want := map[string]string{} // call id → the call log's phoneNumber
	for i, raw := range []any{"anonymous", "", nil, "+1234", "1234567890123456789"} {
		callID := fmt.Sprintf("wh.%d", i)
		p := sample("/sandbox/myoperator/samples/aftercall.json")
		p["_cl"], p["_cr"], p["_ai"] = raw, raw, fmt.Sprintf("wh%d", i)
		p["_pm"] = []map[string]string{{"ky": "ui", "vl": callID}}
		res := do(http.MethodPost, "/webhooks/myoperator/demo/aftercall?token=demo-token", p, "")
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, "afterCall from %v", raw)
		want[callID] = kylas.WithheldNumber
		if s, _ := raw.(string); s != "" {
			want[callID] = s
		}
	}
	v2 := sample("/sandbox/myoperator/samples/v2/call.summary.json")
	v2["event_id"], v2["session_id"], v2["customer_identifier"] = "wh-v2-event", "wh.v2", "anonymous"
	pl := v2["payload"].(map[string]any)
	pl["id"], pl["customer_number"] = "wh.v2", "anonymous"
	for _, lg := range pl["legs"].([]any) {
		if lg := lg.(map[string]any); lg["type"] == "customer" {
			lg["phone_number"] = "anonymous"
		}
	}
	res = do(http.MethodPost, "/webhooks/myoperator/demo/v2?token=demo-token", v2, "")
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "v2 call.summary")
	want["wh.v2"] = "anonymous"

	type record struct {
		RemoteID    string `json:"remoteId"`
		PhoneNumber string `json:"phoneNumber"`
		Owner       struct{ ID int64 }
		RelatedTo   []json.RawMessage `json:"relatedTo"`
	}
	mine := func() map[string][]record {
		var list struct {
			Content []record `json:"content"`
		}
		out := map[string][]record{}
		if kylasList("/v1/call-logs?page=1&size=1000", &list) {
			for _, r := range list.Content {
				if _, ok := want[r.RemoteID]; ok {
					out[r.RemoteID] = append(out[r.RemoteID], r)
				}
			}
		}
		return out
	}
	testenv.Eventually(t, 15*time.Second, "every withheld caller's call in the Kylas sandbox", func() bool {
		return len(mine()) == len(want)
	})
	time.Sleep(500 * time.Millisecond) // a second write, were there one, would show by now
	got := mine()
	for callID, phone := range want {
		recs := got[callID]
		require.Len(t, recs, 1, "call %s: one call log", callID)
		assert.Equal(t, phone, recs[0].PhoneNumber, "call %s", callID)
		assert.EqualValues(t, 1001, recs[0].Owner.ID, "call %s: owned by the mapped user", callID)
		assert.Empty(t, recs[0].RelatedTo, "call %s: related to no one", callID)

		var tr struct {
			Status string `json:"status"`
		}
		res := do(http.MethodGet, "/admin/v1/tenants/demo/calls/"+callID, nil, "demo-admin")
		require.NoError(t, json.NewDecoder(res.Body).Decode(&tr))
		res.Body.Close()
		assert.Equal(t, trace.StatusWritten, tr.Status, "call %s: its trace", callID)
	}
	require.True(t, kylasList("/v1/leads?page=1&size=100", &leads))
	assert.Equal(t, leadsBefore, leads.TotalElements, "no lead made for a withheld number")
}
