package zoho_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
	"github.com/calltrack/calltrack/internal/testenv"
)

const (
	owner    = "5725767000000411001"
	customer = "+919711636496"
)

func TestRecordFields(t *testing.T) {
	t.Parallel()
	dubai, err := zoho.LoadTimeZone("Asia/Dubai")
	require.NoError(t, err)
	cases := []struct {
		name      string
		call      func() crm.Call
		tz        *time.Location
		subject   string
		callType  string
		start     string
		duration  string
		recording string
		desc      []string
	}{
		{
			name: "answered incoming with recording",
			call: func() crm.Call {
				c := crmtest.NewCall("ans-1", customer, owner, call.Incoming, call.Answered)
				c.RecordingURL = "https://calltrack.example/recordings/t/ans-1?sig=x"
				c.Log.Disposition = "Interested"
				return c
			},
			subject:  "Incoming call from +91 97116 36496 — answered by Asha Rao (Sales) [ans-1]",
			callType: "Inbound", start: "2026-03-14T14:56:53+05:30", duration: "01:35",
			recording: "https://calltrack.example/recordings/t/ans-1?sig=x",
			desc: []string{"Incoming call via MyOperator, answered", "Customer: +919711636496", "Agent: Asha Rao <asha@example.com>",
				"Department: Sales", "DID: +918000000000", "Duration: 1 min 35 s", "Disposition: Interested",
				"Recording: https://calltrack.example/recordings/t/ans-1?sig=x", "Call ID: ans-1"},
		},
		{
			name:     "missed incoming is Missed, with no duration",
			call:     func() crm.Call { return crmtest.NewCall("mis-1", customer, owner, call.Incoming, call.Missed) },
			subject:  "Missed call from +91 97116 36496 — rang Asha Rao (Sales) [mis-1]",
			callType: "Missed", start: "2026-03-14T14:56:53+05:30", duration: "",
			desc: []string{"Incoming call via MyOperator, missed", "Duration: 0 s", "Call ID: mis-1"},
		},
		{
			name:     "voicemail is Missed",
			call:     func() crm.Call { return crmtest.NewCall("vm-1", customer, owner, call.Incoming, call.Voicemail) },
			subject:  "Voicemail from +91 97116 36496 (Sales) [vm-1]",
			callType: "Missed", start: "2026-03-14T14:56:53+05:30", duration: "",
		},
		{
			name: "unanswered outgoing stays Outbound, in the tenant's zone",
			call: func() crm.Call {
				c := crmtest.NewCall("out-1", "+971501234567", owner, call.Outgoing, call.Missed)
				c.Log.ClickToCall = true
				return c
			},
			tz:      dubai,
			subject: "Click-to-call to +971501234567 by Asha Rao — not answered [out-1]", callType: "Outbound",
			start: "2026-03-14T13:26:53+04:00", duration: "00:01",
			desc: []string{"Outgoing click-to-call call via MyOperator, missed", "Customer: +971501234567"},
		},
		{
			name: "long call, start from the end time",
			call: func() crm.Call {
				c := crmtest.NewCall("long-1", customer, owner, call.Outgoing, call.Answered)
				c.Log.StartedAt, c.Log.Duration = time.Time{}, 3725
				c.Log.EndedAt = c.Log.ReceivedAt
				return c
			},
			subject: "Outgoing call to +91 97116 36496 by Asha Rao — answered [long-1]", callType: "Outbound",
			start: "2026-03-14T13:56:48+05:30", duration: "62:05",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb, a, _ := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) { c.TimeZone = tc.tz })
			id, err := a.CreateCall(t.Context(), tc.call())
			require.NoError(t, err)
			recs := sb.Records()
			require.Len(t, recs, 1)
			r := recs[0]
			assert.Equal(t, id, r.ID)
			assert.Regexp(t, `^[0-9]{19}$`, r.ID, "Zoho-style id")
			assert.Equal(t, owner, r.Owner.ID)
			assert.Equal(t, tc.subject, r.Subject)
			assert.Equal(t, tc.callType, r.CallType)
			assert.Equal(t, tc.start, r.CallStartTime)
			assert.Equal(t, tc.duration, r.CallDuration)
			assert.Equal(t, tc.recording, r.VoiceRecording)
			for _, line := range tc.desc {
				assert.Contains(t, strings.Split(r.Description, "\n"), line, "description:\n%s", r.Description)
			}
		})
	}
}

// UpdateCall adds what arrives later and leaves type, owner and relation alone.
func TestUpdateKeepsTypeOwnerRelation(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, nil)
	lead := sb.AddLead(sandbox.ZohoPerson{LastName: "Kumar", Phone: "09711636496"})
	c := crmtest.NewCall("upd-1", customer, owner, call.Incoming, call.Missed)
	id, err := a.CreateCall(t.Context(), c)
	require.NoError(t, err)

	c.RecordingURL, c.Log.Disposition = "https://calltrack.example/r/upd-1", "Requested call back"
	require.NoError(t, a.UpdateCall(t.Context(), id, c))
	r := sb.Records()[0]
	assert.Equal(t, "Missed", r.CallType)
	assert.Equal(t, owner, r.Owner.ID)
	require.NotNil(t, r.WhatID)
	assert.Equal(t, lead, r.WhatID.ID)
	assert.Equal(t, "Leads", r.SEModule)
	assert.Equal(t, "Requested call back", r.CallResult, "a value of the Call_Result picklist")
	assert.Equal(t, c.RecordingURL, r.VoiceRecording)
	assert.Contains(t, r.Description, "Recording: "+c.RecordingURL)

	// Free text is not a picklist value: it stays in the description only; a link
	// longer than Voice_Recording__s's 100 characters stays in the description only.
	c2 := crmtest.NewCall("upd-2", customer, owner, call.Incoming, call.Answered)
	id2, err := a.CreateCall(t.Context(), c2)
	require.NoError(t, err)
	c2.Log.Disposition = "Wants a demo next week"
	c2.RecordingURL = "https://calltrack.example/recordings/acme/" + strings.Repeat("x", 80) + "?sig=y"
	require.NoError(t, a.UpdateCall(t.Context(), id2, c2))
	r = sb.Records()[1]
	assert.Empty(t, r.CallResult)
	assert.Contains(t, r.Description, "Disposition: Wants a demo next week")
	assert.Empty(t, r.VoiceRecording)
	assert.Contains(t, r.Description, "Recording: "+c2.RecordingURL)
	assert.Equal(t, 1, sb.Stats().ByEndpoint["GET /crm/v8/settings/fields"], "the field metadata is fetched once and cached")

	err = a.UpdateCall(t.Context(), "5725767000000999999", c)
	require.Error(t, err)
	assert.True(t, crm.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "INVALID_DATA")
	err = a.UpdateCall(t.Context(), "not-an-id", c)
	assert.True(t, crm.IsPermanent(err), "%v", err)
}

// createAll runs one CreateCall per call concurrently and returns ids and errors by index.
func createAll(ctx context.Context, a crm.Adapter, calls []crm.Call) ([]string, []error) {
	ids, errs := make([]string, len(calls)), make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { ids[i], errs[i] = a.CreateCall(ctx, c) })
	}
	wg.Wait()
	return ids, errs
}

func TestBatching(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ calls, requests int }{{50, 1}, {150, 2}} {
		t.Run(fmt.Sprint(tc.calls), func(t *testing.T) {
			t.Parallel()
			// A linger long enough for every goroutine to arrive on a loaded machine.
			sb, a, _ := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) { c.Linger = time.Second })
			contact := sb.AddContact(sandbox.ZohoPerson{LastName: "Rao", Phone: customer})
			// One call first, so the burst finds its searches cached and reaches the
			// batcher at once (the searches are the callers' own requests).
			_, err := a.CreateCall(t.Context(), crmtest.NewCall("warm", customer, owner, call.Incoming, call.Answered))
			require.NoError(t, err)
			calls := make([]crm.Call, tc.calls)
			for i := range calls {
				calls[i] = crmtest.NewCall(fmt.Sprintf("batch-%03d", i), customer, owner, call.Incoming, call.Answered)
			}
			ids, errs := createAll(t.Context(), a, calls)
			byID := map[string]sandbox.ZohoCall{}
			for _, r := range sb.Records() {
				byID[r.ID] = r
			}
			require.Len(t, byID, tc.calls+1)
			for i := range calls {
				require.NoError(t, errs[i])
				r, ok := byID[ids[i]]
				require.True(t, ok, "id %s returned to caller %d is not a record", ids[i], i)
				assert.Contains(t, r.Description, "Call ID: "+calls[i].Log.CallID, "caller %d got another caller's record", i)
				require.NotNil(t, r.WhoID)
				assert.Equal(t, contact, r.WhoID.ID)
			}
			st := sb.Stats()
			assert.Equal(t, 1+tc.requests, st.ByEndpoint["POST /crm/v8/Calls"], "insert requests for %d calls (+1 warm-up)", tc.calls)
			assert.Zero(t, st.Duplicates)
		})
	}
}

// One record Zoho refuses fails its own caller only.
func TestBatchOneInvalidRecordFailsAlone(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) { c.Linger = 500 * time.Millisecond })
	calls := make([]crm.Call, 10)
	for i := range calls {
		calls[i] = crmtest.NewCall(fmt.Sprintf("mixed-%d", i), customer, owner, call.Incoming, call.Answered)
	}
	calls[3].RecordingURL = "ftp://recordings.example/mixed-3.mp3" // Zoho wants a web URL
	ids, errs := createAll(t.Context(), a, calls)
	for i, err := range errs {
		if i == 3 {
			require.Error(t, err)
			assert.True(t, crm.IsPermanent(err), "%v", err)
			var ce *crm.Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "INVALID_DATA", ce.Code)
			assert.Contains(t, ce.Message, "Voice_Recording__s")
			assert.Empty(t, ids[i])
			continue
		}
		require.NoError(t, err, "batch-mate %d", i)
		assert.NotEmpty(t, ids[i])
	}
	assert.Len(t, sb.Records(), 9)
	assert.Equal(t, 1, sb.Stats().ByEndpoint["POST /crm/v8/Calls"])
}

// A whole-request failure (429/5xx) is every batch-mate's, and transient.
func TestBatchWholeRequestFailureIsTransient(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) { c.Linger = 300 * time.Millisecond })
	// Warm the search cache so the fault hits the insert, not the searches.
	_, err := a.CreateCall(t.Context(), crmtest.NewCall("warm", customer, owner, call.Incoming, call.Answered))
	require.NoError(t, err)
	require.NoError(t, sb.SetFaults(sandbox.Faults{ErrorRate: 1, Status: http.StatusTooManyRequests}))
	calls := make([]crm.Call, 5)
	for i := range calls {
		calls[i] = crmtest.NewCall(fmt.Sprintf("fail-%d", i), customer, owner, call.Incoming, call.Answered)
	}
	_, errs := createAll(t.Context(), a, calls)
	for _, err := range errs {
		require.Error(t, err)
		assert.False(t, crm.IsPermanent(err), "%v", err)
		assert.Equal(t, http.StatusTooManyRequests, crm.HTTPStatus(err))
		assert.Equal(t, time.Second, crm.RetryAfter(err))
	}
	assert.Equal(t, 2, sb.Stats().ByEndpoint["POST /crm/v8/Calls"])
	assert.Len(t, sb.Records(), 1)
}

// A caller that gives up before its batch leaves is left out of it.
func TestBatchCallerLeavesBeforeSend(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) { c.Linger = 300 * time.Millisecond })
	_, err := a.CreateCall(t.Context(), crmtest.NewCall("warm", customer, owner, call.Incoming, call.Answered))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	calls := []crm.Call{crmtest.NewCall("stays", customer, owner, call.Incoming, call.Answered)}
	var wg sync.WaitGroup
	var leftErr error
	wg.Go(func() {
		_, leftErr = a.CreateCall(ctx, crmtest.NewCall("leaves", customer, owner, call.Incoming, call.Answered))
	})
	_, errs := createAll(t.Context(), a, calls)
	wg.Wait()
	require.NoError(t, errs[0])
	require.ErrorIs(t, leftErr, context.DeadlineExceeded)
	assert.False(t, crm.IsPermanent(leftErr))
	recs := sb.Records()
	require.Len(t, recs, 2)
	assert.Contains(t, recs[1].Description, "Call ID: stays")
}

// redisAdapter is an adapter sharing env's Redis token store.
func redisAdapter(t *testing.T, env *testenv.Env, url string, edit func(*zoho.Config)) *zoho.Adapter {
	t.Helper()
	cfg := zoho.Config{AccountsURL: url, APIDomain: url, ClientID: sandbox.ZohoClientID, ClientSecret: sandbox.ZohoClientSecret,
		RefreshToken: sandbox.ZohoRefreshToken, Linger: 10 * time.Millisecond,
		TokenStore: zoho.NewRedisTokenStore(env.Redis, env.Prefix)}
	if edit != nil {
		edit(&cfg)
	}
	a, err := zoho.New(cfg)
	require.NoError(t, err)
	return a
}

// Replicas share one access token through Redis: a burst of writes from two
// adapter instances costs one refresh.
func TestTokenSharedThroughRedis(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	sb, _, url := setup(t, sandbox.ZohoOptions{RefreshLimit: -1}, nil)
	replicas := []*zoho.Adapter{redisAdapter(t, env, url, nil), redisAdapter(t, env, url, nil)}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := replicas[i%2].CreateCall(t.Context(), crmtest.NewCall(fmt.Sprintf("shared-%d", i), customer, owner, call.Incoming, call.Answered))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, sb.Records(), 20)
	assert.Equal(t, 1, sb.Refreshes(), "access-token refreshes")
	assert.Equal(t, 1, sb.Stats().ByEndpoint["POST /oauth/v2/token"])
}

// A token Zoho refuses (401 INVALID_TOKEN) is dropped and the request retried once
// with a fresh one.
func TestInvalidTokenRefreshAndRetry(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	sb, _, url := setup(t, sandbox.ZohoOptions{}, nil)
	a := redisAdapter(t, env, url, nil)
	_, err := a.CreateCall(t.Context(), crmtest.NewCall("tok-1", customer, owner, call.Incoming, call.Answered))
	require.NoError(t, err)
	sb.ExpireTokens()
	_, err = a.CreateCall(t.Context(), crmtest.NewCall("tok-2", customer, owner, call.Incoming, call.Answered))
	require.NoError(t, err)
	assert.Len(t, sb.Records(), 2)
	assert.Equal(t, 2, sb.Refreshes())
	assert.Equal(t, 1, sb.Stats().Rejected, "the one 401")
}

// At most 10 refreshes per 10 minutes per refresh token, across replicas: the
// 11th is refused by calltrack (transient, with a wait) before Zoho would.
func TestRefreshCap(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	sb, _, url := setup(t, sandbox.ZohoOptions{RefreshLimit: -1}, nil)
	replicas := []*zoho.Adapter{redisAdapter(t, env, url, nil), redisAdapter(t, env, url, nil)}
	for i := range zoho.DefaultMaxRefreshes {
		sb.ExpireTokens()
		_, err := replicas[i%2].CreateCall(t.Context(), crmtest.NewCall(fmt.Sprintf("cap-%d", i), customer, owner, call.Incoming, call.Answered))
		require.NoError(t, err, "refresh %d", i+1)
	}
	require.Equal(t, 10, sb.Refreshes())
	sb.ExpireTokens()
	for _, a := range replicas {
		_, err := a.CreateCall(t.Context(), crmtest.NewCall("cap-over", customer, owner, call.Incoming, call.Answered))
		require.Error(t, err)
		assert.ErrorIs(t, err, zoho.ErrRefreshLimit)
		assert.False(t, crm.IsPermanent(err), "%v", err)
		assert.Greater(t, crm.RetryAfter(err), 9*time.Minute, "wait until the first refresh leaves the window")
		assert.Contains(t, err.Error(), "10 access tokens in 10m0s")
	}
	assert.Equal(t, 10, sb.Refreshes(), "calltrack must not ask Zoho for an 11th token")
	assert.Len(t, sb.Records(), 10)
}

func TestRefreshRefused(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) { c.RefreshToken = "1000.revoked-secret-refresh" })
	_, err := a.CreateCall(t.Context(), crmtest.NewCall("ref-1", customer, owner, call.Incoming, call.Answered))
	require.Error(t, err)
	assert.True(t, crm.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "invalid_code")
	assert.NotContains(t, err.Error(), "revoked-secret-refresh")
	assert.Empty(t, sb.Records())
}

func TestSearchTriesEveryFormat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		person sandbox.ZohoPerson
		lead   bool
	}{
		{"contact in E.164", sandbox.ZohoPerson{Phone: "+919711636496"}, false},
		{"contact with code, no plus", sandbox.ZohoPerson{Phone: "919711636496"}, false},
		{"contact national with trunk 0", sandbox.ZohoPerson{Mobile: "09711636496"}, false},
		{"contact 10-digit", sandbox.ZohoPerson{Mobile: "9711636496"}, false},
		{"lead 10-digit", sandbox.ZohoPerson{Phone: "9711636496"}, true},
		{"lead in E.164", sandbox.ZohoPerson{Mobile: "+919711636496"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb, a, _ := setup(t, sandbox.ZohoOptions{}, nil)
			tc.person.LastName = "Kumar"
			var want string
			if tc.lead {
				want = sb.AddLead(tc.person)
			} else {
				want = sb.AddContact(tc.person)
			}
			_, err := a.CreateCall(t.Context(), crmtest.NewCall("s-1", customer, owner, call.Incoming, call.Answered))
			require.NoError(t, err)
			r := sb.Records()[0]
			if tc.lead {
				require.NotNil(t, r.WhatID)
				assert.Nil(t, r.WhoID)
				assert.Equal(t, want, r.WhatID.ID)
				assert.Equal(t, "Leads", r.SEModule)
			} else {
				require.NotNil(t, r.WhoID)
				assert.Nil(t, r.WhatID)
				assert.Equal(t, want, r.WhoID.ID)
			}
		})
	}

	t.Run("unknown caller: one query per module covering every form, shared and cached", func(t *testing.T) {
		t.Parallel()
		sb, a, _ := setup(t, sandbox.ZohoOptions{}, nil)
		burst := make([]crm.Call, 10) // concurrent calls from one number share each search
		for i := range burst {
			burst[i] = crmtest.NewCall(fmt.Sprint("u-", i), customer, owner, call.Incoming, call.Answered)
		}
		_, errs := createAll(t.Context(), a, burst)
		for _, err := range errs {
			require.NoError(t, err)
		}
		_, err := a.CreateCall(t.Context(), crmtest.NewCall("u-later", customer, owner, call.Incoming, call.Answered))
		require.NoError(t, err)
		st := sb.Stats()
		assert.Equal(t, 2, st.ByEndpoint["POST /crm/v8/coql"], "Contacts, then Leads, once for the burst and the later call")
		for _, r := range sb.Records() {
			assert.Nil(t, r.WhoID)
			assert.Nil(t, r.WhatID)
		}
	})
}

func TestUsersPaging(t *testing.T) {
	t.Parallel()
	var users []sandbox.ZohoUser
	for i := range 450 {
		u := sandbox.ZohoUser{ID: fmt.Sprint(5725767000000100000 + i), FullName: fmt.Sprintf("User %d", i),
			Email: fmt.Sprintf("user%d@example.com", i), Status: "active",
			Role: &sandbox.ZohoRef{ID: "1", Name: "Sales"}, Profile: &sandbox.ZohoRef{ID: "2", Name: "Standard"}}
		if i%10 == 0 {
			u.Status = "disabled"
		}
		if i == 7 {
			u.Phone, u.Mobile = "9711636496", "+91 98223 34455"
		}
		users = append(users, u)
	}
	sb := sandbox.NewZoho(sandbox.ZohoOptions{Users: users})
	var pages atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/crm/v8/users" {
			pages.Add(1)
			assert.Equal(t, "AllUsers", r.URL.Query().Get("type"))
			assert.Equal(t, "200", r.URL.Query().Get("per_page"))
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a, err := zoho.New(zoho.Config{AccountsURL: srv.URL, APIDomain: srv.URL, ClientID: sandbox.ZohoClientID,
		ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken})
	require.NoError(t, err)

	got, err := a.Users(t.Context())
	require.NoError(t, err)
	require.Len(t, got, 450)
	assert.EqualValues(t, 3, pages.Load(), "200 + 200 + 50")
	inactive := 0
	for _, u := range got {
		if !u.Active {
			inactive++
		}
	}
	assert.Equal(t, 45, inactive)
	u7 := got[7]
	assert.Equal(t, "5725767000000100007", u7.ID)
	assert.Equal(t, "User 7", u7.Name)
	assert.Equal(t, "user7@example.com", u7.Email)
	assert.True(t, u7.Active)
	assert.Equal(t, "Sales", u7.Role)
	assert.Equal(t, "Standard", u7.Profile)
	assert.Equal(t, []string{"+919711636496", "+919822334455"}, u7.Phones)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	good := zoho.Config{AccountsURL: "https://accounts.zoho.in", APIDomain: "https://www.zohoapis.in",
		ClientID: "1000.ABC", ClientSecret: "s3cret-client", RefreshToken: "1000.r3fresh"}
	require.NoError(t, good.Validate())
	for field, edit := range map[string]func(*zoho.Config){
		"AccountsURL":    func(c *zoho.Config) { c.AccountsURL = "accounts.zoho.in" },
		"APIDomain":      func(c *zoho.Config) { c.APIDomain = "" },
		"ClientID":       func(c *zoho.Config) { c.ClientID = " " },
		"ClientSecret":   func(c *zoho.Config) { c.ClientSecret = "" },
		"RefreshToken":   func(c *zoho.Config) { c.RefreshToken = "" },
		"DefaultCountry": func(c *zoho.Config) { c.DefaultCountry = "IN" },
	} {
		c := good
		edit(&c)
		err := c.Validate()
		require.Error(t, err, field)
		assert.Contains(t, err.Error(), field)
	}
	s := good.String()
	assert.NotContains(t, s, "s3cret-client")
	assert.NotContains(t, s, "r3fresh")
	_, err := zoho.LoadTimeZone("Mars/Olympus")
	assert.Error(t, err)
}

// errors.Is sees through the adapter's errors to the context's.
func TestCancelledWhileWaitingForToken(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	slow := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-slow // the accounts server hangs
	}))
	t.Cleanup(func() { close(slow); srv.Close() })
	a := redisAdapter(t, env, srv.URL, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := a.CreateCall(ctx, crmtest.NewCall("c", customer, owner, call.Incoming, call.Answered))
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.False(t, crm.IsPermanent(err))
}

// A record Zoho refuses because its What_Id names a lead converted or deleted since it
// was cached is inserted once more, alone, related to the caller found again (here a
// new lead); its batch-mates are written by the first insert, and the refusal of
// another field is not retried.
func TestBatchStalePartyRetriedAlone(t *testing.T) {
	t.Parallel()
	const other = "+919822334455"
	cache := &crm.MemoryPartyCache{}
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) {
		c.Linger, c.Parties, c.Leads = 500*time.Millisecond, cache, crm.LeadPolicy{Create: true, Source: "Cold Call"}
	})
	old := sb.AddLead(sandbox.ZohoPerson{LastName: "Lal", Mobile: customer})
	contact := sb.AddContact(sandbox.ZohoPerson{LastName: "Rao", Phone: other})
	// Cache both callers, then the lead is converted (gone from Leads).
	_, errs := createAll(t.Context(), a, []crm.Call{
		crmtest.NewCall("warm-1", customer, owner, call.Incoming, call.Answered),
		crmtest.NewCall("warm-2", other, owner, call.Incoming, call.Answered),
	})
	require.NoError(t, errors.Join(errs...))
	require.True(t, sb.DeleteLead(old))

	calls := []crm.Call{
		crmtest.NewCall("stale", customer, owner, call.Incoming, call.Answered),
		crmtest.NewCall("fine", other, owner, call.Incoming, call.Answered),
		crmtest.NewCall("bad-recording", other, owner, call.Incoming, call.Answered),
	}
	calls[2].RecordingURL = "ftp://recordings.example/bad.mp3" // refused for Voice_Recording__s: not retried
	ids, errs := createAll(t.Context(), a, calls)
	require.NoError(t, errs[0], "the stale caller's call is written")
	require.NoError(t, errs[1])
	require.Error(t, errs[2])
	assert.NotErrorIs(t, errs[2], crm.ErrPartyGone)

	leads := sb.Leads()
	require.Len(t, leads, 1, "one new lead")
	byID := map[string]sandbox.ZohoCall{}
	for _, r := range sb.Records() {
		byID[r.ID] = r
	}
	require.Len(t, byID, 4, "2 warm-up calls + the 2 written, each once")
	require.NotNil(t, byID[ids[0]].WhatID)
	assert.Equal(t, leads[0].ID, byID[ids[0]].WhatID.ID)
	assert.Equal(t, owner, byID[ids[0]].Owner.ID)
	assert.Equal(t, owner, leads[0].OwnerID)
	require.NotNil(t, byID[ids[1]].WhoID)
	assert.Equal(t, contact, byID[ids[1]].WhoID.ID)
	assert.Equal(t, 3, sb.Stats().ByEndpoint["POST /crm/v8/Calls"], "warm-up, the batch, the stale record's second insert")
	assert.Zero(t, sb.Stats().Duplicates)
}
