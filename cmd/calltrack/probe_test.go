package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `calltrack probe URL` prints the answer, sends the operator token when
// CALLTRACK_ADMIN_TOKEN is set (so /readyz shows its checks), and fails on a non-2xx.
func TestProbe(t *testing.T) {
	var notReady atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"status":"ready"}`
		if r.Header.Get("Authorization") == "Bearer op-secret" {
			body = `{"checks":{"ingest":"kafka"},"status":"ready"}`
		}
		if notReady.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			body = `{"status":"not ready"}`
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	probe := func() (string, error) {
		return stdout(t, func() error { return run(context.Background(), []string{"probe", srv.URL + "/readyz"}) })
	}

	t.Setenv("CALLTRACK_ADMIN_TOKEN", "")
	out, err := probe()
	require.NoError(t, err)
	assert.Equal(t, "{\"status\":\"ready\"}\n", out)

	t.Setenv("CALLTRACK_ADMIN_TOKEN", "op-secret")
	out, err = probe()
	require.NoError(t, err)
	assert.Equal(t, "{\"checks\":{\"ingest\":\"kafka\"},\"status\":\"ready\"}\n", out)
	assert.NotContains(t, out, "op-secret")

	notReady.Store(true)
	out, err = probe()
	require.Error(t, err, "a non-2xx answer exits 1")
	assert.Contains(t, err.Error(), "HTTP 503")
	assert.NotContains(t, err.Error(), "op-secret")
	assert.Equal(t, "{\"status\":\"not ready\"}\n", out)
}
