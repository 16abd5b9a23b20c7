package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/myoperator/sandbox"
)

func TestUsersControl(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	do := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	st, u := do(http.MethodPut, "/users/5cd40f6556f2f124", `{"name":"Sumit","email":"sumit@example.com","contact_number":"8586848544","is_enabled":true}`)
	require.Equal(t, http.StatusOK, st, "%v", u)
	assert.Equal(t, "1", u["is_enabled"])
	st, _ = do(http.MethodPut, "/users/5cd40f6556f2f125", `{"name":"Priya","email":"p@example.com","contact_number":"8586848545","is_enabled":0}`)
	require.Equal(t, http.StatusOK, st)
	st, body := do(http.MethodPut, "/users/x", `{"nam":"typo"}`)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Contains(t, body["message"], "unknown field")

	st, page := do(http.MethodGet, "/user?token=demo-myoperator-token&page=1", "")
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "success", page["status"])
	assert.Nil(t, page["next_page"])
	data := page["data"].([]any)
	require.Len(t, data, 2)
	first := data[0].(map[string]any)
	assert.Equal(t, "5cd40f6556f2f124", first["user_id"])
	assert.Equal(t, "8586848544", first["contact_number"])
	assert.NotEmpty(t, first["uuid"])
	assert.Equal(t, "0", data[1].(map[string]any)["is_enabled"])

	st, page = do(http.MethodGet, "/user?token=nope", "")
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "error", page["status"])

	st, _ = do(http.MethodDelete, "/users/5cd40f6556f2f124", "")
	assert.Equal(t, http.StatusNoContent, st)
	st, _ = do(http.MethodDelete, "/users/5cd40f6556f2f124", "")
	assert.Equal(t, http.StatusNotFound, st)
	assert.Len(t, sb.Users(), 1)
}
