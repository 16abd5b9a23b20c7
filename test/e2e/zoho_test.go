package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
)

// newZohoStack is newStack with the tenant on a Zoho CRM sandbox.
func newZohoStack(t *testing.T) (*stack, *sandbox.Zoho) {
	t.Helper()
	return newZohoStackWith(t, nil)
}

// newZohoStackWith is newZohoStack with the tenant and config adjusted by edit.
func newZohoStackWith(t *testing.T, edit func(*tenant.Tenant, *config.Config)) (*stack, *sandbox.Zoho) {
	t.Helper()
	env := testenv.New(t)
	zs := sandbox.NewZoho(sandbox.ZohoOptions{Seed: 1})
	srv := httptest.NewServer(zs)
	t.Cleanup(srv.Close)
	tenants := tenant.NewRegistry(&tenant.Tenant{ID: tenantID, WebhookToken: token, CompanyID: companyID,
		CRM: tenant.CRM{Kind: "zoho", Zoho: tenant.Zoho{AccountsURL: srv.URL, APIDomain: srv.URL,
			ClientID: sandbox.ZohoClientID, ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken}}})
	s := &stack{t: t, env: env, group: "writer" + env.Suffix, zohoMain: zs}
	cfg := config.Config{KafkaBrokers: env.Brokers, KafkaPartitions: 3, KafkaRepl: 1, TopicSuffix: env.Suffix,
		RedisAddr: env.RedisAddr, RedisPrefix: env.Prefix, AdminToken: adminToken, WriterGroup: s.group,
		LogLevel: "warn", ShutdownTimeout: 5 * time.Second}
	if edit != nil {
		tn, _ := tenants.Get(tenantID)
		edit(tn, &cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, err := app.Open(ctx, cfg, app.NewLogger(testWriter{t}, "warn"), tenants)
	require.NoError(t, err)
	s.app = a
	s.api = httptest.NewServer(a.HTTP())
	t.Cleanup(func() {
		s.api.Close()
		s.stopWriters()
		a.Close()
	})
	s.startWriter()
	return s, zs
}

var zohoCallID = regexp.MustCompile(`(?m)^Call ID: (\S+)$`)

// zohoRecords are the Zoho sandbox's Calls records of a call (its "Call ID:" line).
func zohoRecords(zs *sandbox.Zoho, callID string) []sandbox.ZohoCall {
	var out []sandbox.ZohoCall
	for _, r := range zs.Records() {
		if m := zohoCallID.FindStringSubmatch(r.Description); m != nil && m[1] == callID {
			out = append(out, r)
		}
	}
	return out
}

// Calls of a Zoho tenant land once each in the Calls module, owned by the mapped
// Zoho users, through batched inserts and one shared access token.
func TestZohoCallsWrittenOnceWithOwners(t *testing.T) {
	s, zs := newZohoStack(t)
	owners := map[string]string{sumit.id: "5725767000000411001", priya.id: "5725767000000411002"}
	s.mapAgent(sumit.id, owners[sumit.id], sumit.email)
	s.mapAgent(priya.id, owners[priya.id], priya.email)
	contact := zs.AddContact(sandbox.ZohoPerson{LastName: "Customer", Mobile: "9711636496"})

	const n = 20
	want := map[string]string{} // call id → Zoho owner
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		ag := []agent{sumit, priya}[i%2]
		spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{ag}, answered: true}}, recording: i%4 == 0}
		mu.Lock()
		want[spec.uid] = owners[ag.id]
		mu.Unlock()
		wg.Go(func() {
			r := s.postForm("aftercall", afterCall(spec), token)
			assert.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
		})
	}
	wg.Wait()

	testenv.Eventually(t, within, "every call in the Zoho sandbox", func() bool { return len(zs.Records()) >= n })
	for id := range want {
		s.waitStatus(id, "written", within)
	}
	got := map[string]int{}
	for _, r := range zs.Records() {
		m := zohoCallID.FindStringSubmatch(r.Description)
		require.NotNil(t, m, "record without our call id: %s", r.Description)
		got[m[1]]++
		assert.Equal(t, want[m[1]], r.Owner.ID, "owner of %s", m[1])
		assert.Equal(t, "Inbound", r.CallType)
		require.NotNil(t, r.WhoID, "related to the contact")
		assert.Equal(t, contact, r.WhoID.ID)
		assert.Contains(t, r.Subject, "Incoming call from +91 97116 36496 — answered by ")
	}
	require.Len(t, got, n)
	for id, c := range got {
		assert.Equal(t, 1, c, "records of %s", id)
	}
	st := zs.Stats()
	t.Logf("zoho sandbox: %d calls, %d insert requests, %d token refreshes, stats %+v",
		n, st.ByEndpoint["POST /crm/v8/Calls"], zs.Refreshes(), st)
	assert.Less(t, st.ByEndpoint["POST /crm/v8/Calls"], n, "inserts are batched: fewer requests than calls")
	assert.Equal(t, 1, zs.Refreshes(), "one access token for the whole run")
	assert.Zero(t, st.Duplicates)
}

// A Zoho call with a recording is written with calltrack's short link in
// Voice_Recording__s (the sandbox refuses more than 100 characters with INVALID_DATA,
// as Zoho does), also when links expire (the longer form), with a realistic public
// URL; the description carries the same link.
func TestZohoRecordingShortLinkFitsField(t *testing.T) {
	const public = "https://calltrack.example-company.com" // 37 characters
	s, zs := newZohoStackWith(t, func(tn *tenant.Tenant, cfg *config.Config) {
		cfg.PublicURL = public
		cfg.RecordingSigningKey = recordingKey
		tn.Recordings.LinkTTL = 90 * 24 * time.Hour // links that expire: "[expiry.]sig"
	})
	s.mapAgent(sumit.id, "5725767000000411001", sumit.email)
	spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}, recording: true}
	r := s.postForm("aftercall", afterCall(spec), token)
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	s.waitStatus(spec.uid, "written", within)

	recs := zohoRecords(zs, spec.uid)
	require.Len(t, recs, 1, "one Calls record, not a dead letter")
	link := recs[0].VoiceRecording
	require.Regexp(t, `^`+regexp.QuoteMeta(public+"/r/"+tenantID+"/"+spec.uid+"/")+`[0-9a-z]{4}\.[A-Za-z0-9_-]{16}$`, link)
	assert.LessOrEqual(t, len(link), 100, "Voice_Recording__s holds 100 characters")
	assert.Contains(t, recs[0].Description, link, "the description has the link too")
	assert.Equal(t, "5725767000000411001", recs[0].Owner.ID)
}
