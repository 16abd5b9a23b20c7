package main

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/mapping"
	mosandbox "github.com/calltrack/calltrack/internal/myoperator/sandbox"
	"github.com/calltrack/calltrack/internal/testenv"
)

// stdout runs fn and returns what it printed on standard output.
func stdout(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	return capture(t, &os.Stdout, fn)
}

// capture runs fn and returns what it wrote to *f (os.Stdout, os.Stderr).
func capture(t *testing.T, f **os.File, fn func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := *f
	*f = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	ferr := fn()
	*f = old
	_ = w.Close()
	return <-done, ferr
}

// `calltrack sync --once` syncs the tenants of the tenants file; `calltrack mappings
// rebuild` (Kafka and Redis settings only) restores flushed mappings from the topic.
func TestSyncAndRebuildCommands(t *testing.T) {
	env := testenv.New(t)
	mo := mosandbox.New(mosandbox.Options{Token: "mo-secret"})
	moSrv := httptest.NewServer(mo)
	t.Cleanup(moSrv.Close)
	kylas := sandbox.NewKylas(sandbox.KylasOptions{APIKey: "crm-secret", Users: []sandbox.KylasUser{
		{ID: 1001, FirstName: "Sumit", Email: "sumit@example.com", Active: true},
		{ID: 1002, FirstName: "Priya", Email: "priya@example.com", Active: true},
	}})
	crmSrv := httptest.NewServer(kylas)
	t.Cleanup(crmSrv.Close)
	mo.PutUser(mosandbox.User{ID: "5cd40f6556f2f124", Name: "Sumit", Email: "sumit@example.com", Enabled: true})
	mo.PutUser(mosandbox.User{ID: "5cd40f6556f2f125", Name: "Priya", Email: "Priya@Example.com", Enabled: true})
	mo.PutUser(mosandbox.User{ID: "5cd40f6556f2f126", Name: "Ravi", Email: "ravi@example.com", Enabled: true})

	file := filepath.Join(t.TempDir(), "tenants.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`tenants:
  acme:
    webhook_token_env: ACME_WEBHOOK
    myoperator_api_url: `+moSrv.URL+`
    myoperator_api_token_env: ACME_MYOPERATOR
    sync:
      match: email_ci
      interval: 2h
    crm:
      kind: kylas
      base_url: `+crmSrv.URL+`
      api_key_env: ACME_KYLAS
  quiet:
    webhook_token_env: ACME_WEBHOOK
    crm: {kind: kylas, base_url: `+crmSrv.URL+`, api_key_env: ACME_KYLAS}
`), 0o600))
	for k, v := range map[string]string{
		"CALLTRACK_KAFKA_BROKERS": strings.Join(env.Brokers, ","), "CALLTRACK_REDIS_ADDR": env.RedisAddr,
		"CALLTRACK_REDIS_PREFIX": env.Prefix, "CALLTRACK_TOPIC_SUFFIX": env.Suffix, "CALLTRACK_TENANTS_FILE": file,
		"CALLTRACK_LOG_LEVEL": "warn", "CALLTRACK_KAFKA_PARTITIONS": "3",
		"ACME_WEBHOOK": "w", "ACME_MYOPERATOR": "mo-secret", "ACME_KYLAS": "crm-secret",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	out, err := stdout(t, func() error { return run(ctx, []string{"sync", "--once"}) })
	require.NoError(t, err, out)
	assert.Contains(t, out, "acme: 2 matched, 1 unmatched, 2 changes (3 MyOperator users, 2 CRM users)")
	assert.Contains(t, out, "unmatched myoperator user 5cd40f6556f2f126 <ravi@example.com>: no_match")
	assert.Contains(t, out, "quiet: skipped:")
	assert.NotContains(t, out, "mo-secret")

	store := mapping.NewStore(env.Redis, env.Prefix)
	before, err := store.List(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, before, 2)
	require.NoError(t, store.Flush(ctx, "acme"))

	// The rebuilds need only the Kafka and Redis settings, which --brokers and --redis
	// give as for the other on-call commands (docs/runbook.md).
	t.Setenv("CALLTRACK_TENANTS_FILE", "")
	t.Setenv("CALLTRACK_KAFKA_BROKERS", "")
	t.Setenv("CALLTRACK_REDIS_ADDR", "")
	conn := []string{"--brokers", strings.Join(env.Brokers, ","), "--redis", env.RedisAddr}
	// At the services' log level the one-shot commands print their output and log no
	// "started" line: that is for the roles that keep running.
	t.Setenv("CALLTRACK_LOG_LEVEL", "info")
	logged, err := capture(t, &os.Stderr, func() error {
		out, err = stdout(t, func() error { return run(ctx, append([]string{"parked", "rebuild"}, conn...)) })
		return err
	})
	require.NoError(t, err, out)
	assert.Equal(t, "read 0 records (0 written, 0 skipped) from calltrack.call.parked.v1"+env.Suffix+"\nrestored 0 parked calls (0 written since)\n", out)
	assert.NotContains(t, logged, `"message":"started"`)
	out, err = stdout(t, func() error { return run(ctx, append([]string{"mappings", "rebuild"}, conn...)) })
	require.NoError(t, err, out)
	assert.Contains(t, out, "acme: 2 mappings restored")
	assert.Contains(t, out, "restored 2 mappings of 1 tenants")
	after, err := store.List(ctx, "acme")
	require.NoError(t, err)
	for i := range after {
		after[i].UpdatedAt, before[i].UpdatedAt = after[i].UpdatedAt.UTC(), before[i].UpdatedAt.UTC()
	}
	assert.Equal(t, before, after)

	_, err = stdout(t, func() error { return run(ctx, []string{"sync", "--once", "--interval", "1s"}) })
	var ue usageError
	assert.ErrorAs(t, err, &ue)
}
