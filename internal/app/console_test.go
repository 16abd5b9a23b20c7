package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
)

// `serve` with a Redis it cannot reach says so without printing the password of the
// connection string, in its error or its log.
func TestUnreachableRedisPrintsNoPassword(t *testing.T) {
	var logs testenv.LogBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	cfg := config.Config{RedisAddr: "redis://:hunter2-secret@127.0.0.1:1/0", KafkaBrokers: []string{"127.0.0.1:1"}, RedisPrefix: "ct"}
	_, err := Open(ctx, cfg, NewLogger(&logs, "debug"), tenant.NewRegistry())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redis://:xxxxx@127.0.0.1:1/0")
	assert.NotContains(t, err.Error()+logs.String(), "hunter2-secret")
}

// With CALLTRACK_ADMIN_ADDR the console and admin API leave the webhooks' listener for
// their own.
func TestAdminListenerOfItsOwn(t *testing.T) {
	env := testenv.New(t)
	cfg := config.Config{KafkaBrokers: env.Brokers, KafkaPartitions: 3, KafkaRepl: 1, TopicSuffix: env.Suffix,
		RedisAddr: env.RedisAddr, RedisPrefix: env.Prefix, AdminToken: "op-token", AdminAddr: "127.0.0.1:0",
		ShutdownTimeout: 5 * time.Second, V2SummaryWait: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, err := Open(ctx, cfg, NewLogger(io.Discard, "warn"), tenant.NewRegistry(&tenant.Tenant{ID: "acme", WebhookToken: "tok"}))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	pub, adm := a.HTTP(), a.AdminHTTP()
	require.NotNil(t, adm)
	status := func(e http.Handler, path string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer op-token")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, p := range []string{"/admin/v1/tenants", "/admin/v1/tenants/acme/mappings", "/console/sign-in"} {
		assert.Equal(t, http.StatusNotFound, status(pub, p), "public listener: %s", p)
		assert.NotEqual(t, http.StatusNotFound, status(adm, p), "admin listener: %s", p)
	}
	assert.Equal(t, http.StatusOK, status(adm, "/admin/v1/tenants"))
	assert.Equal(t, http.StatusOK, status(pub, "/healthz"))
}
