package app

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

// In `calltrack dev`, as the issue checks it: tenant demo's API token places a call
// for a mapped CRM user, the sandbox MyOperator rings the agent and the number and
// posts the call's webhooks, and the call lands once in the sandbox CRM owned by that
// user; an unmapped user gets a 4xx and rings no one.
func TestDevClickToCall(t *testing.T) {
	d := runDev(t)
	do := func(method, path, auth, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, d.Base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	st, m := do(http.MethodPut, "/admin/v1/tenants/demo/mappings/5cd40f6556f2f124", "Bearer demo-admin", `{"crm_user_id":"1001","email":"sumit.arya@example.com"}`)
	require.Equal(t, http.StatusOK, st, "%v", m)

	st, m = do(http.MethodPost, "/api/v1/tenants/demo/calls", "Bearer demo-api-token", `{"crm_user_id":"1002","number":"+919711636496"}`)
	assert.Equal(t, http.StatusUnprocessableEntity, st, "unmapped user: %v", m)

	st, m = do(http.MethodPost, "/api/v1/tenants/demo/calls", "Bearer "+DevAPIToken, `{"crm_user_id":"1001","number":"+919711636496"}`)
	require.Equal(t, http.StatusAccepted, st, "%v", m)
	ref := m["reference_id"]

	var calls []map[string]any
	testenv.Eventually(t, 10*time.Second, "the sandbox MyOperator plays the call", func() bool {
		_, m := do(http.MethodGet, "/sandbox/myoperator/obd", "", "")
		calls = nil
		for _, c := range m["calls"].([]any) {
			calls = append(calls, c.(map[string]any))
		}
		return len(calls) == 1 && calls[0]["state"] == "ended" && len(calls[0]["delivered"].([]any)) == 3
	})
	assert.Equal(t, ref, calls[0]["reference_id"])
	assert.Equal(t, "5cd40f6556f2f124", calls[0]["user_id"], "the agent mapped to 1001 rung first")

	var list struct {
		Content []struct {
			Owner    struct{ ID int64 } `json:"owner"`
			CallType string             `json:"callType"`
		} `json:"content"`
		TotalElements int `json:"totalElements"`
	}
	testenv.Eventually(t, 10*time.Second, "the call in the sandbox CRM", func() bool {
		req, _ := http.NewRequest(http.MethodGet, d.Base+"/sandbox/kylas/v1/call-logs", nil)
		req.Header.Set("api-key", DevKylasAPIKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		return json.NewDecoder(res.Body).Decode(&list) == nil && list.TotalElements >= 1
	})
	require.Equal(t, 1, list.TotalElements, "logged once")
	assert.EqualValues(t, 1001, list.Content[0].Owner.ID)
	assert.Equal(t, "outgoing", list.Content[0].CallType)
}
