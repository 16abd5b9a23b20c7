package kylas_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
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
	"github.com/calltrack/calltrack/internal/crm/kylas"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

const customer = "+919711636496"

func TestCreateCallBody(t *testing.T) {
	t.Parallel()
	sb, a := setup(t, sandbox.KylasOptions{Users: []sandbox.KylasUser{{ID: 4242, FirstName: "Asha", LastName: "Rao", Active: true}}})
	contact := sb.AddContact(person(customer))
	c := crmtest.NewCall("uid-1", customer, "4242", call.Incoming, call.Answered)
	c.Log.ClickToCall = true
	c.RecordingURL = "https://ct.example/recordings/acme/uid-1?sig=s"

	id, err := a.CreateCall(t.Context(), c)
	require.NoError(t, err)

	recs := sb.Records()
	require.Len(t, recs, 1)
	r := recs[0]
	assert.Equal(t, fmt.Sprint(r.ID), id)
	assert.Equal(t, sandbox.KylasIDName{ID: 4242, Name: "Asha Rao"}, r.Owner)
	assert.Equal(t, "sync", r.Route, "attribution needs the sync route")
	assert.Equal(t, "uid-1", r.RemoteID)
	assert.Equal(t, "connected", r.Outcome)
	assert.Equal(t, "incoming", r.CallType)
	assert.Equal(t, "2026-03-14T09:26:53.000Z", r.StartTime)
	assert.Equal(t, "2026-03-14T09:28:28.000Z", r.EndTime)
	assert.Equal(t, 95, r.Duration)
	assert.Equal(t, customer, r.PhoneNumber)
	assert.Equal(t, customer, r.Originator)
	assert.Equal(t, "+919000000001", r.Receiver)
	assert.Equal(t, &sandbox.KylasRecording{URL: c.RecordingURL}, r.CallRecording, "the sync route takes the recording as its URL")
	assert.Equal(t, []sandbox.KylasRelated{{ID: contact, Entity: "contact", Name: "Test " + customer, PhoneNumber: customer}}, r.RelatedTo)
	require.Len(t, r.Notes, 1)
	for _, want := range []string{"Incoming click-to-call call", "Agent: Asha Rao", "Department: Sales", "DID: +918000000000"} {
		assert.Contains(t, r.Notes[0].Description, want)
	}
}

func TestOutcomeAndParties(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dir                    call.Direction
		status                 call.Status
		outcome, orig, receive string
	}{
		{call.Incoming, call.Answered, "connected", customer, "+919000000001"},
		{call.Incoming, call.Missed, "missed_call", customer, "+919000000001"},
		{call.Incoming, call.Voicemail, "missed_call", customer, "+919000000001"},
		{call.Outgoing, call.Answered, "connected", "+919000000001", customer},
		{call.Outgoing, call.Missed, "no_answer", "+919000000001", customer},
		{call.Outgoing, call.Voicemail, "no_answer", "+919000000001", customer},
	} {
		t.Run(string(tc.dir)+"/"+string(tc.status), func(t *testing.T) {
			t.Parallel()
			sb, a := setup(t, sandbox.KylasOptions{})
			_, err := a.CreateCall(t.Context(), crmtest.NewCall("c", customer, "7", tc.dir, tc.status))
			require.NoError(t, err)
			r := sb.Records()[0]
			assert.Equal(t, tc.outcome, r.Outcome)
			assert.Equal(t, string(tc.dir), r.CallType)
			assert.Equal(t, tc.orig, r.Originator)
			assert.Equal(t, tc.receive, r.Receiver)
		})
	}
}

func TestRelatedMatchesExactNumber(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		stored sandbox.KylasPhone
		found  bool
	}{
		"national with dial code":    {sandbox.KylasPhone{Value: "9711636496", DialCode: "+91"}, true},
		"whole E.164 in value":       {sandbox.KylasPhone{Value: "+91 97116 36496"}, true},
		"trunk zero":                 {sandbox.KylasPhone{Value: "09711636496", DialCode: "+91"}, true},
		"bare national":              {sandbox.KylasPhone{Value: "9711636496"}, true},
		"same digits, other country": {sandbox.KylasPhone{Value: "9711636496", DialCode: "+44"}, false},
		"longer number ending alike": {sandbox.KylasPhone{Value: "19711636496", DialCode: "+91"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sb, a := setup(t, sandbox.KylasOptions{})
			id := sb.AddLead(sandbox.KylasPerson{FirstName: "L", PhoneNumbers: []sandbox.KylasPhone{tc.stored}})
			_, err := a.CreateCall(t.Context(), crmtest.NewCall("c", customer, "7", call.Incoming, call.Answered))
			require.NoError(t, err)
			rel := sb.Records()[0].RelatedTo
			if tc.found {
				require.Len(t, rel, 1)
				assert.Equal(t, id, rel[0].ID)
			} else {
				assert.Empty(t, rel)
			}
		})
	}
}

func TestSearchesAreCachedAcrossRetries(t *testing.T) {
	t.Parallel()
	sb := sandbox.NewKylas(withOwners(sandbox.KylasOptions{}))
	var failed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/call-logs/sync" && failed.CompareAndSwap(false, true) {
			w.WriteHeader(http.StatusServiceUnavailable) // the write fails after its searches succeeded
			return
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key", BearerToken: "demo-kylas-oauth"})
	require.NoError(t, err)
	c := crmtest.NewCall("c", customer, "7", call.Incoming, call.Answered)

	_, err = a.CreateCall(t.Context(), c)
	require.Error(t, err)
	assert.False(t, crm.IsPermanent(err))
	id, err := a.CreateCall(t.Context(), c) // the retry
	require.NoError(t, err)
	c.RecordingURL = "https://ct.example/r"
	require.NoError(t, a.UpdateCall(t.Context(), id, c)) // the recording, soon after

	st := sb.Stats()
	assert.Equal(t, 1, st.ByEndpoint["POST /v1/search/contact"], "one search per entity, cached across the retry and the update")
	assert.Equal(t, 1, st.ByEndpoint["POST /v1/search/lead"])
	assert.Equal(t, 1, st.ByEndpoint["POST /v1/call-logs/sync"])
	assert.Equal(t, 1, st.ByEndpoint["PUT /v1/call-logs/{id}"])
	assert.Len(t, sb.Records(), 1)
}

func TestHeadersAndLimiter(t *testing.T) {
	t.Parallel()
	sb := sandbox.NewKylas(withOwners(sandbox.KylasOptions{APIKey: "k-123", BearerToken: "tok"}))
	var bad atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
			bad.Add(1)
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	lim := &countingLimiter{}
	a, err := kylas.New(kylas.Config{BaseURL: srv.URL + "/v1/", APIKey: "k-123", BearerToken: "tok", Limiter: lim})
	require.NoError(t, err)

	_, err = a.CreateCall(t.Context(), crmtest.NewCall("c", customer, "7", call.Incoming, call.Answered))
	require.NoError(t, err)
	assert.Zero(t, bad.Load())
	assert.Equal(t, int64(sb.Stats().Requests), lim.n.Load(), "every request waits on the limiter")

	lim.err = context.DeadlineExceeded
	_, err = a.CreateCall(t.Context(), crmtest.NewCall("d", "+919822334455", "7", call.Incoming, call.Answered))
	require.Error(t, err)
	assert.False(t, crm.IsPermanent(err))
}

type countingLimiter struct {
	n   atomic.Int64
	err error
}

func (l *countingLimiter) Wait(context.Context) error { l.n.Add(1); return l.err }

func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := crmtest.NewCall("c", customer, "7", call.Incoming, call.Answered)

	t.Run("bad key is permanent and not echoed", func(t *testing.T) {
		t.Parallel()
		sb := sandbox.NewKylas(sandbox.KylasOptions{})
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "wrong-secret", BearerToken: "demo-kylas-oauth"})
		require.NoError(t, err)
		_, err = a.CreateCall(ctx, c)
		require.Error(t, err)
		assert.True(t, crm.IsPermanent(err))
		assert.Equal(t, http.StatusUnauthorized, crm.HTTPStatus(err))
		assert.NotContains(t, err.Error(), "wrong-secret")
		assert.Empty(t, sb.Records())
	})

	t.Run("validation 400 with field errors is permanent", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/call-logs/sync" {
				w.Write([]byte(`{"content":[]}`))
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"code":"01601002","message":"Invalid call log","fieldErrors":[{"field":"outcome","message":"is invalid"}]}`))
		}))
		t.Cleanup(srv.Close)
		a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "k", BearerToken: "t"})
		require.NoError(t, err)
		_, err = a.CreateCall(ctx, c)
		var ce *crm.Error
		require.ErrorAs(t, err, &ce)
		assert.True(t, ce.Permanent)
		assert.Equal(t, "01601002", ce.Code)
		assert.Equal(t, "Invalid call log; outcome: is invalid", ce.Message)
	})

	t.Run("429 is transient with retry-after", func(t *testing.T) {
		t.Parallel()
		sb, a := setup(t, sandbox.KylasOptions{})
		require.NoError(t, sb.SetFaults(sandbox.Faults{ErrorRate: 1, Status: 429}))
		_, err := a.CreateCall(ctx, c)
		require.Error(t, err)
		assert.False(t, crm.IsPermanent(err))
		assert.Equal(t, time.Second, crm.RetryAfter(err))
	})

	t.Run("sandbox rate limit is transient with retry-after", func(t *testing.T) {
		t.Parallel()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		sb, a := setup(t, sandbox.KylasOptions{RateLimit: 2, Now: func() time.Time { return now }})
		_, err := a.CreateCall(ctx, c) // 2 searches + 1 write in one frozen second
		require.Error(t, err)
		assert.Equal(t, http.StatusTooManyRequests, crm.HTTPStatus(err))
		assert.Equal(t, time.Second, crm.RetryAfter(err))
		assert.Empty(t, sb.Records())
	})

	t.Run("bad owner and record ids are permanent without a request", func(t *testing.T) {
		t.Parallel()
		sb, a := setup(t, sandbox.KylasOptions{})
		bad := c
		bad.OwnerID = "usr_abc"
		_, err := a.CreateCall(ctx, bad)
		assert.True(t, crm.IsPermanent(err), "%v", err)
		bad = c
		bad.OwnerID = ""
		_, err = a.CreateCall(ctx, bad)
		assert.True(t, crm.IsPermanent(err), "%v", err)
		assert.True(t, crm.IsPermanent(a.UpdateCall(ctx, "abc", c)))
		bad = c
		bad.Log.Direction = "sideways"
		_, err = a.CreateCall(ctx, bad)
		assert.True(t, crm.IsPermanent(err), "%v", err)
		assert.Zero(t, sb.Stats().Requests)
	})

	t.Run("unknown record on update is permanent", func(t *testing.T) {
		t.Parallel()
		_, a := setup(t, sandbox.KylasOptions{})
		err := a.UpdateCall(ctx, "999999", c)
		assert.True(t, crm.IsPermanent(err))
		assert.Equal(t, http.StatusNotFound, crm.HTTPStatus(err))
	})

	t.Run("transport error is transient", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "k"})
		require.NoError(t, err)
		_, err = a.CreateCall(ctx, c)
		require.Error(t, err)
		assert.False(t, crm.IsPermanent(err))
		assert.Zero(t, crm.HTTPStatus(err))
	})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		cfg     kylas.Config
		wantErr string
	}{
		"defaults":      {kylas.Config{APIKey: "k"}, ""},
		"no key":        {kylas.Config{}, "APIKey"},
		"relative url":  {kylas.Config{APIKey: "k", BaseURL: "api.kylas.io"}, "BaseURL"},
		"bad country":   {kylas.Config{APIKey: "k", DefaultCountry: "IN"}, "DefaultCountry"},
		"dev sandbox":   {kylas.Config{APIKey: "k", BaseURL: "http://127.0.0.1:8080/sandbox/kylas"}, ""},
		"plus country":  {kylas.Config{APIKey: "k", DefaultCountry: "+91"}, ""},
		"ftp is no api": {kylas.Config{APIKey: "k", BaseURL: "ftp://x"}, "BaseURL"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				assert.NoError(t, err)
				_, err = kylas.New(tc.cfg)
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
	s := fmt.Sprint(kylas.Config{APIKey: "secret-key", BearerToken: "secret-tok"})
	assert.NotContains(t, s, "secret")
}

// plainRoute is the adapter with an api-key alone (POST /v1/call-logs) on a sandbox
// whose key belongs to user 9; createLeads: crm.leads.create.
func plainRoute(t *testing.T, createLeads bool) (*sandbox.Kylas, *kylas.Adapter) {
	t.Helper()
	sb := sandbox.NewKylas(sandbox.KylasOptions{KeyUserID: 9, Users: []sandbox.KylasUser{{ID: 9, FirstName: "Key", LastName: "Owner"}}})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key", Leads: crm.LeadPolicy{Create: createLeads}})
	require.NoError(t, err)
	return sb, a
}

// With an api-key alone the adapter uses POST /v1/call-logs: Kylas owns the record
// by the key's user, the recording is {url, fileName, data}, and a call without a
// lead or contact cannot be written (relatedTo is required there).
func TestPlainRoute(t *testing.T) {
	t.Parallel()
	sb, a := plainRoute(t, false)
	contact := sb.AddContact(person(customer))
	c := crmtest.NewCall("plain-1", customer, "4242", call.Incoming, call.Answered)
	c.RecordingURL = "https://ct.example/r/plain-1?sig=s"
	c.Log.Recording = &call.Recording{FileName: "plain-1.mp3"}
	id, err := a.CreateCall(t.Context(), c)
	require.NoError(t, err)
	r := sb.Records()[0]
	assert.Equal(t, "create", r.Route)
	assert.Equal(t, int64(9), r.Owner.ID, "owned by the key's user, not the mapped 4242")
	assert.Empty(t, r.RemoteID)
	assert.Equal(t, &sandbox.KylasRecording{URL: c.RecordingURL, FileName: "plain-1.mp3"}, r.CallRecording)
	assert.Equal(t, contact, r.RelatedTo[0].ID)

	// Found again by the note's Call ID line.
	got, found, err := a.FindCall(t.Context(), c)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, id, got)

	// An update keeps the route's shape.
	c.Log.Disposition = "Interested"
	require.NoError(t, a.UpdateCall(t.Context(), id, c))

	internal := crmtest.NewCall("plain-2", customer, "4242", call.Incoming, call.Answered)
	internal.Log.Internal = true
	_, err = a.CreateCall(t.Context(), internal)
	require.Error(t, err)
	assert.True(t, crm.IsPermanent(err))
	assert.Contains(t, err.Error(), "requires relatedTo")
	assert.Len(t, sb.Records(), 1)
}

// A new caller's contact and lead searches go out together (one round trip before
// the create, not two): each search is held until both are in flight. The caller is
// both a contact and a lead; the call is related to the contact.
func TestNewCallerSearchesInParallel(t *testing.T) {
	t.Parallel()
	sb := sandbox.NewKylas(withOwners(sandbox.KylasOptions{APIKey: "k", BearerToken: "tok"}))
	contact := sb.AddContact(person(customer))
	sb.AddLead(person(customer))
	var inFlight atomic.Int32
	both := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/search/") {
			if inFlight.Add(1) == 2 {
				once.Do(func() { close(both) })
			}
			select {
			case <-both:
			case <-time.After(10 * time.Second):
				http.Error(w, `{"code":"test","message":"the other search never came"}`, http.StatusServiceUnavailable)
				return
			}
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "k", BearerToken: "tok"})
	require.NoError(t, err)

	_, err = a.CreateCall(t.Context(), crmtest.NewCall("p-1", customer, "7", call.Incoming, call.Answered))
	require.NoError(t, err)
	st := sb.Stats()
	assert.Equal(t, 1, st.ByEndpoint["POST /v1/search/contact"])
	assert.Equal(t, 1, st.ByEndpoint["POST /v1/search/lead"])
	recs := sb.Records()
	require.Len(t, recs, 1)
	require.Len(t, recs[0].RelatedTo, 1)
	assert.Equal(t, sandbox.KylasRelated{ID: contact, Entity: "contact", Name: "Test " + customer, PhoneNumber: customer}, recs[0].RelatedTo[0])
}

// A caller whose number MyOperator withheld or garbled is written on the sync route,
// once, owned by the mapped user: phoneNumber (and the customer's side of
// originator/receiver) is what MyOperator sent, or kylas.WithheldNumber when it sent
// nothing; related to no one, with no lead search and no lead made (nothing to search
// or make one with), even with unknown_caller: create_lead. Update keeps it so.
func TestWithheldCaller(t *testing.T) {
	t.Parallel()
	for _, raw := range crmtest.WithheldCallers {
		t.Run(strconv.Quote(raw), func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t, sandbox.KylasOptions{})
			sb.AddLead(person(customer))
			a := adapter(t, sb, crmtest.Options{Leads: crm.LeadPolicy{Create: true, Source: "7"}})
			c := crmtest.NewWithheldCall("withheld", raw, "4242", call.Incoming, call.Missed)
			want := raw
			if raw == "" {
				want = kylas.WithheldNumber
			}

			id, err := a.CreateCall(t.Context(), c)
			require.NoError(t, err)
			c.RecordingURL = "https://ct.example/recordings/acme/withheld?sig=s"
			require.NoError(t, a.UpdateCall(t.Context(), id, c))

			recs := sb.Records()
			require.Len(t, recs, 1)
			r := recs[0]
			assert.Equal(t, fmt.Sprint(r.ID), id)
			assert.Equal(t, "sync", r.Route)
			assert.Equal(t, sandbox.KylasIDName{ID: 4242, Name: "Asha Rao"}, r.Owner, "owned by the mapped user")
			assert.Equal(t, want, r.PhoneNumber)
			assert.Equal(t, want, r.Originator)
			assert.Equal(t, "+919000000001", r.Receiver)
			assert.Empty(t, r.RelatedTo)
			assert.Equal(t, c.RecordingURL, r.CallRecording.URL)
			st := sb.Stats()
			assert.Zero(t, st.ByEndpoint["POST /v1/search/contact"]+st.ByEndpoint["POST /v1/search/lead"], "no search for a withheld number")
			assert.Zero(t, st.ByEndpoint["POST /v1/leads"], "no lead for a withheld number")
			assert.Len(t, sb.Leads(), 1)
		})
	}

	// Outgoing: the customer is the receiver.
	sb, a := setup(t, sandbox.KylasOptions{})
	_, err := a.CreateCall(t.Context(), crmtest.NewWithheldCall("withheld-out", "anonymous", "7", call.Outgoing, call.Answered))
	require.NoError(t, err)
	r := sb.Records()[0]
	assert.Equal(t, "anonymous", r.PhoneNumber)
	assert.Equal(t, "+919000000001", r.Originator)
	assert.Equal(t, "anonymous", r.Receiver)
}

// On the api-key route (POST /v1/call-logs) relatedTo is required, and a withheld
// caller has no lead or contact: the call is refused before any request, as an
// internal call is (README: the api-key route's limits).
func TestWithheldCallerPlainRoute(t *testing.T) {
	t.Parallel()
	sb, a := plainRoute(t, true)
	_, err := a.CreateCall(t.Context(), crmtest.NewWithheldCall("withheld-plain", "anonymous", "9", call.Incoming, call.Missed))
	require.Error(t, err)
	assert.True(t, crm.IsPermanent(err))
	assert.Contains(t, err.Error(), "a withheld number")
	assert.Empty(t, sb.Records())
	assert.Zero(t, sb.Stats().Requests, "nothing sent: no search, no lead, no create")
}

// Only Kylas's refusal of the related record's id (a 400 with a field error on
// relatedTo[i].id) makes the adapter forget the cached party and write once more;
// any other refusal fails the call as before, after one write.
func TestStalePartyRecognisedNarrowly(t *testing.T) {
	t.Parallel()
	const goneBody = `{"code":"invalid_request","message":"validation failed","fieldErrors":[{"field":"relatedTo[0].id","message":"no lead with id 101"}]}`
	for _, tc := range []struct {
		name   string
		status int
		body   string
		gone   bool
	}{
		{"relatedTo[0].id", http.StatusBadRequest, goneBody, true},
		{"relatedTo.id (object form)", http.StatusBadRequest,
			`{"code":"invalid_request","message":"validation failed","fieldErrors":[{"field":"relatedTo.id","message":"not found"}]}`, true},
		{"relatedTo missing", http.StatusBadRequest,
			`{"code":"invalid_request","message":"validation failed","fieldErrors":[{"field":"relatedTo","message":"is required"}]}`, false},
		{"relatedTo's entity", http.StatusBadRequest,
			`{"code":"invalid_request","message":"validation failed","fieldErrors":[{"field":"relatedTo[0].entity","message":"invalid"}]}`, false},
		{"owner", http.StatusBadRequest,
			`{"code":"invalid_request","message":"validation failed","fieldErrors":[{"field":"ownerId","message":"no user with id 7"}]}`, false},
		{"a 404 naming the field", http.StatusNotFound, goneBody, false},
		{"a 400 without fields", http.StatusBadRequest, `{"code":"invalid_request","message":"no lead with id 101"}`, false},
		{"a 400 that is not JSON", http.StatusBadRequest, `relatedTo[0].id`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := sandbox.NewKylas(withOwners(sandbox.KylasOptions{}))
			contact := sb.AddContact(person(customer))
			var refused atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/call-logs/sync" && refused.CompareAndSwap(false, true) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte(tc.body))
					return
				}
				sb.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			cache := &crm.MemoryPartyCache{}
			require.NoError(t, cache.Put(t.Context(), customer, crm.Party{Entity: crm.EntityLead, ID: "101"}, crm.PartyTTL))
			a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key", BearerToken: "demo-kylas-oauth", Parties: cache})
			require.NoError(t, err)

			ctx, n := crm.WithRequestCounts(t.Context(), crm.RequestCreate)
			_, err = a.CreateCall(ctx, crmtest.NewCall("narrow", customer, "7", call.Incoming, call.Answered))
			_, byOp := n()
			cached, _, _ := cache.Get(t.Context(), customer)
			if !tc.gone {
				require.Error(t, err)
				assert.True(t, crm.IsPermanent(err), "%v", err)
				assert.NotErrorIs(t, err, crm.ErrPartyGone)
				assert.Equal(t, 1.0, byOp[crm.RequestCreate], "one write")
				assert.Equal(t, "101", cached.ID, "the cache is left alone")
				assert.Empty(t, sb.Records())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 2.0, byOp[crm.RequestCreate], "refused, then written")
			assert.Equal(t, 2.0, byOp[crm.RequestSearch], "resolved again: one search per entity")
			require.Len(t, sb.Records(), 1)
			assert.Equal(t, contact, sb.Records()[0].RelatedTo[0].ID, "related to the caller found again")
			assert.Equal(t, strconv.FormatInt(contact, 10), cached.ID)
		})
	}
}

// On the api-key route, where relatedTo is required, a caller whose cached lead was
// deleted gets a new lead (unknown_caller: create_lead) and the call is written once,
// owned by the key's user; with unknown_caller: none there is no one to relate it to
// and the call is refused as any call without a lead or contact is there.
func TestStalePartyPlainRoute(t *testing.T) {
	t.Parallel()
	for _, create := range []bool{true, false} {
		t.Run(fmt.Sprint("create_lead=", create), func(t *testing.T) {
			t.Parallel()
			sb, a := plainRoute(t, create)
			old := sb.AddLead(person(customer))
			_, err := a.CreateCall(t.Context(), crmtest.NewCall("plain-stale-1", customer, "9", call.Incoming, call.Answered))
			require.NoError(t, err)
			require.True(t, sb.DeleteLead(old))

			_, err = a.CreateCall(t.Context(), crmtest.NewCall("plain-stale-2", customer, "9", call.Incoming, call.Answered))
			if !create {
				require.Error(t, err)
				assert.True(t, crm.IsPermanent(err))
				assert.Contains(t, err.Error(), "requires relatedTo")
				assert.Len(t, sb.Records(), 1)
				return
			}
			require.NoError(t, err)
			leads := sb.Leads()
			require.Len(t, leads, 1)
			assert.NotEqual(t, old, leads[0].ID)
			recs := sb.Records()
			require.Len(t, recs, 2)
			assert.Equal(t, leads[0].ID, recs[1].RelatedTo[0].ID)
			assert.Equal(t, int64(9), recs[1].Owner.ID)
		})
	}
}
