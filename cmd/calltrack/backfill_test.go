package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	mosandbox "github.com/calltrack/calltrack/internal/myoperator/sandbox"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
)

// `calltrack backfill` with the services' settings: a call only in MyOperator's call log
// reaches the CRM once; a dry run counts it without writing.
func TestBackfillCommand(t *testing.T) {
	env := testenv.New(t)
	mo := mosandbox.New(mosandbox.Options{Token: "mo-secret"})
	moSrv := httptest.NewServer(mo)
	t.Cleanup(moSrv.Close)
	// The fallback owner (1001) is a Kylas user — the key's own — as it must be in
	// production: the sandbox refuses a lead or call owned by no user.
	kylas := sandbox.NewKylas(sandbox.KylasOptions{APIKey: "crm-secret", KeyUserID: 1001,
		Users: []sandbox.KylasUser{{ID: 1001, FirstName: "Sumit", LastName: "Arya", Email: "sumit.arya@example.com", Active: true}}})
	crmSrv := httptest.NewServer(kylas)
	t.Cleanup(crmSrv.Close)
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`tenants:
  acme:
    webhook_token_env: ACME_WEBHOOK
    myoperator_api_url: `+moSrv.URL+`
    myoperator_api_token_env: ACME_MYOPERATOR
    fallback_owner: "1001"
    backfill: {enabled: false}   # no periodic run: this test's runs only
    crm: {kind: kylas, base_url: `+crmSrv.URL+`, api_key_env: ACME_KYLAS}
`), 0o600))
	for k, v := range map[string]string{
		"CALLTRACK_KAFKA_BROKERS": strings.Join(env.Brokers, ","), "CALLTRACK_REDIS_ADDR": env.RedisAddr,
		"CALLTRACK_REDIS_PREFIX": env.Prefix, "CALLTRACK_TOPIC_SUFFIX": env.Suffix, "CALLTRACK_TENANTS_FILE": file,
		"CALLTRACK_LOG_LEVEL": "warn", "CALLTRACK_KAFKA_PARTITIONS": "3", "CALLTRACK_WRITER_GROUP": "writer" + env.Suffix,
		"ACME_WEBHOOK": "w", "ACME_MYOPERATOR": "mo-secret", "ACME_KYLAS": "crm-secret",
	} {
		t.Setenv(k, v)
	}

	// The writers, as `calltrack work` runs them.
	cfg, err := config.Load()
	require.NoError(t, err)
	tenants, err := tenant.Load(file, os.Getenv)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, cfg, app.NewLogger(os.Stderr, "warn"), tenants)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- a.RunWriter(ctx, a.Writer()) }()
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})

	sample, err := os.ReadFile("../../internal/myoperator/testdata/aftercall_answered.json")
	require.NoError(t, err)
	const uid = "n2.1700000000.777"
	res, err := http.Post(moSrv.URL+"/calls?call_id="+uid+"&at="+time.Now().Add(-10*time.Minute).UTC().Format(time.RFC3339),
		"application/json", strings.NewReader(string(sample)))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	records := func() int {
		n := 0
		for _, r := range kylas.Records() {
			if r.CallID() == uid {
				n++
			}
		}
		return n
	}

	out, err := cli(t, "backfill", "--tenant", "acme", "--since", "1h", "--dry-run")
	require.NoError(t, err, out)
	assert.Contains(t, out, "found 1 calls in MyOperator's call log, 0 already known to calltrack, would publish 1\n")
	assert.Contains(t, out, "  would publish "+uid+"\n")
	assert.Contains(t, out, "dry run: nothing written")
	assert.NotContains(t, out, "mo-secret")

	out, err = cli(t, "backfill", "--tenant", "acme", "--since", "1h")
	require.NoError(t, err, out)
	assert.Contains(t, out, "found 1 calls in MyOperator's call log, 0 already known to calltrack, published 1\n")
	testenv.Eventually(t, 60*time.Second, "the call in the CRM", func() bool { return records() == 1 })

	// --brokers and --redis stand for the environment's, as for the other commands.
	t.Setenv("CALLTRACK_KAFKA_BROKERS", "")
	t.Setenv("CALLTRACK_REDIS_ADDR", "")
	out, err = cli(t, "backfill", "--tenant", "acme", "--since", "1h", "--json",
		"--brokers", strings.Join(env.Brokers, ","), "--redis", env.RedisAddr)
	require.NoError(t, err, out)
	assert.Contains(t, out, `"known": 1,`)
	assert.Contains(t, out, `"published": 0,`)
	assert.Equal(t, 1, records(), "once")

	var ue usageError
	for _, args := range [][]string{
		{"backfill", "--since", "1h"},
		{"backfill", "--tenant", "acme"},
		{"backfill", "--tenant", "acme", "--since", "yesterday"},
		{"backfill", "--tenant", "acme", "--since", "9d"},
		{"backfill", "--tenant", "nope", "--since", "1h"},
	} {
		_, err := cli(t, args...)
		assert.ErrorAs(t, err, &ue, "%v: %v", args, err)
	}
}
