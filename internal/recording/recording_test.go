package recording

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	mosandbox "github.com/calltrack/calltrack/internal/myoperator/sandbox"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

const (
	key    = "test-recording-signing-key"
	oldKey = "the-old-recording-signing-key"
	uid    = "n2.1596270949.2175190"
)

func TestShortLinks(t *testing.T) {
	t.Parallel()
	// A realistic public URL, a longish tenant id, a MyOperator uid, an expiry: it fits
	// Zoho's 100-character Voice_Recording__s.
	s := Signer{BaseURL: "https://calltrack.example-company.com/", Keys: []tenant.Secret{key}}
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	link := s.URL("acme-industries", uid, exp)
	assert.Len(t, link, len("https://calltrack.example-company.com")+len("acme-industries")+len(uid)+21+5, link)
	assert.LessOrEqual(t, len(link), 100, link)
	assert.Regexp(t, `^https://calltrack\.example-company\.com/r/acme-industries/n2\.1596270949\.2175190/[0-9a-z]{4}\.[A-Za-z0-9_-]{16}$`, link)
	t.Logf("%d characters: %s", len(link), link)
	// The longest base URL and tenant id that fit, with a v2 session id too.
	base := "https://" + strings.Repeat("c", 58-len("https://")-8) // tenant "acme-ind"
	assert.Len(t, Signer{BaseURL: base, Keys: s.Keys}.URL("acme-ind", uid, time.Time{}), 100)
	assert.LessOrEqual(t, len(s.URL("acme-industries", "s4.1766492465.1359", exp)), 100)
	token := link[strings.LastIndex(link, "/")+1:]
	got, ok := s.VerifyURL("acme-industries", uid, token)
	require.True(t, ok)
	assert.Equal(t, exp, got.UTC())

	never := s.URL("acme", uid, time.Time{})
	nt := never[strings.LastIndex(never, "/")+1:]
	got, ok = s.VerifyURL("acme", uid, nt)
	require.True(t, ok)
	assert.True(t, got.IsZero(), "never expires")

	// Anything changed fails: the call, the tenant, the expiry, the signature.
	for _, bad := range []struct{ tenant, call, token string }{
		{"acme", "n2.1596270949.2175191", nt},
		{"acme2", uid, nt},
		{"acme", uid, "zzzzzz." + nt},
		{"acme-industries", uid, strings.Replace(token, token[:3], "zzz", 1)},
		{"acme", uid, "A" + nt[1:]},
		{"acme", uid, nt[:15]},
		{"acme", uid, ""},
	} {
		_, ok := s.VerifyURL(bad.tenant, bad.call, bad.token)
		assert.False(t, ok, "%+v", bad)
	}
	// Fields cannot shift between each other.
	assert.NotEqual(t, s.URL("ab", "c", time.Time{})[len("https://calltrack.example-company.com/r/ab/c/"):],
		s.URL("a", "bc", time.Time{})[len("https://calltrack.example-company.com/r/a/bc/"):])
}

// A rotated-out key keeps verifying while it is listed; new links use the first key.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	before := Signer{BaseURL: "https://c.example", Keys: []tenant.Secret{oldKey}}
	during := Signer{BaseURL: "https://c.example", Keys: []tenant.Secret{key, oldKey}}
	after := Signer{BaseURL: "https://c.example", Keys: []tenant.Secret{key}}
	tokenOf := func(l string) string { return l[strings.LastIndex(l, "/")+1:] }

	old := tokenOf(before.URL("acme", uid, time.Time{}))
	_, ok := during.VerifyURL("acme", uid, old)
	assert.True(t, ok, "an old link verifies while the old key is listed")
	_, ok = after.VerifyURL("acme", uid, old)
	assert.False(t, ok, "and not once it is gone")
	fresh := tokenOf(during.URL("acme", uid, time.Time{}))
	_, ok = after.VerifyURL("acme", uid, fresh)
	assert.True(t, ok, "new links are signed with the first key")

	legacy := before.LegacyURL("acme", uid, "x.mp3")
	sig := legacy[strings.Index(legacy, "sig=")+4:]
	assert.True(t, during.VerifyLegacy("acme", uid, "x.mp3", sig))
	assert.False(t, during.VerifyLegacy("acme", uid, "y.mp3", sig))
	assert.False(t, after.VerifyLegacy("acme", uid, "x.mp3", sig))

	// A key too short verifies nothing, and disables links.
	short := Signer{BaseURL: "https://c.example", Keys: []tenant.Secret{"short"}}
	_, ok = short.VerifyURL("acme", uid, tokenOf(short.URL("acme", uid, time.Time{})))
	assert.False(t, ok)
	assert.False(t, short.Enabled())
	assert.False(t, Signer{Keys: []tenant.Secret{key}}.Enabled(), "no base URL")
}

// fakeMyOperator counts what it is asked.
type fakeMyOperator struct {
	mu     sync.Mutex
	link   string
	ttl    time.Duration
	err    error
	hits   []json.RawMessage
	asked  []string
	search int
}

func (f *fakeMyOperator) RecordingLink(_ context.Context, file string) (moapi.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, file)
	if f.err != nil {
		return moapi.Link{}, f.err
	}
	ttl := f.ttl
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	return moapi.Link{URL: f.link, ExpiresAt: time.Now().Add(ttl)}, nil
}

func (f *fakeMyOperator) Search(_ context.Context, q moapi.SearchQuery) (moapi.SearchPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.search++
	return moapi.SearchPage{Total: len(f.hits), Hits: f.hits}, nil
}

func (f *fakeMyOperator) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.asked)
}

// noFollow does not follow redirects, on its own transport: parallel tests closing their
// servers close the default transport's idle connections.
var noFollow = &http.Client{Transport: &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, u string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	res, err := noFollow.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &body)
	return res, body
}

type fixture struct {
	mo       *fakeMyOperator
	store    *Store
	mr       *miniredis.Miniredis
	outcomes *prometheus.CounterVec
	tenants  *tenant.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return &fixture{mo: &fakeMyOperator{link: "https://media.myoperator.co/x.mp3?exp=1"}, store: NewStore(rdb, "ct"), mr: mr,
		outcomes: NewOutcomes(prometheus.NewRegistry()),
		tenants: tenant.NewRegistry(&tenant.Tenant{ID: "acme", MyOperatorKey: "mo-token"},
			&tenant.Tenant{ID: "week", MyOperatorKey: "mo-token", Recordings: tenant.Recordings{LinkTTL: 7 * 24 * time.Hour}},
			&tenant.Tenant{ID: "nokey"})}
}

// replica is one calltrack process serving links, over the fixture's Redis.
func (f *fixture) replica(t *testing.T) (*httptest.Server, *Linker, *Handler) {
	t.Helper()
	h := &Handler{Tenants: f.tenants, Store: f.store, Outcomes: f.outcomes, Log: zerolog.Nop(),
		MyOperator: func(*tenant.Tenant) Exchanger { return f.mo }}
	e := web.New(zerolog.Nop(), nil, nil)
	h.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	h.Signer = Signer{BaseURL: srv.URL, Keys: []tenant.Secret{key}}
	return srv, &Linker{Signer: h.Signer, Tenants: f.tenants, Store: f.store, Log: zerolog.Nop()}, h
}

func TestLinksCachedAcrossReplicas(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, linker, _ := f.replica(t)
	srvB, _, _ := f.replica(t)
	link := linker.Link("acme", uid, call.Recording{URL: "https://app.myoperator.co/audio/x", FileName: "x.mp3"})
	require.Contains(t, link, "/r/acme/"+uid+"/")

	// Link checkers HEAD the link: valid, and MyOperator is not asked.
	res, _ := do(t, http.MethodHead, link)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Zero(t, f.mo.calls())

	res, _ = do(t, http.MethodGet, link)
	assert.Equal(t, http.StatusFound, res.StatusCode)
	assert.Equal(t, f.mo.link, res.Header.Get("Location"))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Equal(t, []string{"x.mp3"}, f.mo.asked)

	// The same link clicked on another replica, and many times at once: one exchange.
	onB := srvB.URL + link[strings.Index(link, "/r/"):]
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _ := do(t, http.MethodGet, onB)
			assert.Equal(t, http.StatusFound, res.StatusCode)
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, f.mo.calls(), "MyOperator's fresh link is cached for every replica")
	assert.Equal(t, 10.0, testutil.ToFloat64(f.outcomes.WithLabelValues("acme", OutcomeCached)))
	assert.Equal(t, 1.0, testutil.ToFloat64(f.outcomes.WithLabelValues("acme", OutcomeHead)))
	ttl := f.mr.TTL("ct:rec:{acme}:link:" + linkKeyHash("x.mp3"))
	assert.InDelta(t, (24*time.Hour - 24*time.Hour/10).Seconds(), ttl.Seconds(), 60, "cached for its validity but a margin")

	// Past the cache, MyOperator is asked again.
	f.mr.FastForward(ttl + time.Second)
	res, _ = do(t, http.MethodGet, link)
	assert.Equal(t, http.StatusFound, res.StatusCode)
	assert.Equal(t, 2, f.mo.calls())
}

func linkKeyHash(file string) string {
	k := (&Store{prefix: "ct"}).linkKey("acme", file)
	return k[strings.LastIndex(k, ":")+1:]
}

func TestLinkAnswers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv, linker, h := f.replica(t)
	link := linker.Link("acme", uid, call.Recording{FileName: "x.mp3"})
	code := func(body map[string]any) string { return body["error"].(map[string]any)["code"].(string) }

	// Tampered: 403 with calltrack's error body, MyOperator not asked.
	for _, bad := range []string{
		link[:len(link)-1] + "A",
		strings.Replace(link, uid, "n2.1596270949.2175191", 1),
		strings.Replace(link, "/r/acme/", "/r/week/", 1),
		srv.URL + "/r/acme/" + uid + "/x",
	} {
		res, body := do(t, http.MethodGet, bad)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, bad)
		assert.Equal(t, map[string]any{"error": map[string]any{"code": "forbidden", "message": "missing or wrong recording link signature"}}, body)
		res, _ = do(t, http.MethodHead, bad)
		assert.Equal(t, http.StatusForbidden, res.StatusCode)
	}
	assert.Zero(t, f.mo.calls())

	// Only https is followed.
	f.mo.link = "http://media.myoperator.co/x.mp3"
	res, body := do(t, http.MethodGet, link)
	assert.Equal(t, http.StatusBadGateway, res.StatusCode)
	assert.Equal(t, "insecure_link", code(body))
	f.mo.link = "http://127.0.0.1:9/x.mp3"
	res, _ = do(t, http.MethodGet, link)
	assert.Equal(t, http.StatusBadGateway, res.StatusCode, "loopback http only with the dev exception")
	h.AllowHTTPLoopback = true
	res, _ = do(t, http.MethodGet, link)
	assert.Equal(t, http.StatusFound, res.StatusCode)
	f.mo.link = "http://media.myoperator.co/x.mp3"
	res, _ = do(t, http.MethodGet, linker.Link("acme", "n2.1596270949.9", call.Recording{FileName: "y.mp3"}))
	assert.Equal(t, http.StatusBadGateway, res.StatusCode, "the exception is loopback only")
	h.AllowHTTPLoopback = false

	// MyOperator rate-limits the account: 503 with its Retry-After.
	f.mo.err = &moapi.Error{Op: "moapi: recording link", Status: 429, RetryAfter: 42 * time.Second}
	res, body = do(t, http.MethodGet, linker.Link("acme", "n2.1596270949.10", call.Recording{FileName: "z.mp3"}))
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Equal(t, "rate_limited", code(body))
	assert.Equal(t, "42", res.Header.Get("Retry-After"))
	f.mo.err = &moapi.Error{Op: "moapi: recording link", Status: 404, Err: moapi.ErrRecordingNotFound}
	res, body = do(t, http.MethodGet, linker.Link("acme", "n2.1596270949.11", call.Recording{FileName: "gone.mp3"}))
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Equal(t, "recording_not_found", code(body))
	f.mo.err = errors.New("timeout")
	res, body = do(t, http.MethodGet, linker.Link("acme", "n2.1596270949.12", call.Recording{FileName: "w.mp3"}))
	assert.Equal(t, http.StatusBadGateway, res.StatusCode)
	assert.Equal(t, "recording_unavailable", code(body))
	f.mo.err = nil

	res, body = do(t, http.MethodGet, linker.Link("nokey", uid, call.Recording{FileName: "x.mp3"}))
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Equal(t, "recording_unavailable", code(body))
	res, _ = do(t, http.MethodGet, linker.Link("gone", uid, call.Recording{FileName: "x.mp3"}))
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

// A tenant's links can expire: 410 after, HEAD included.
func TestExpiringLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, linker, h := f.replica(t)
	now := time.Now()
	linker.Now = func() time.Time { return now }
	link := linker.Link("week", uid, call.Recording{FileName: "x.mp3"})
	never := linker.Link("acme", uid, call.Recording{FileName: "x.mp3"})
	res, _ := do(t, http.MethodGet, link)
	assert.Equal(t, http.StatusFound, res.StatusCode)

	h.Now = func() time.Time { return now.Add(7*24*time.Hour - time.Minute) }
	res, _ = do(t, http.MethodHead, link)
	assert.Equal(t, http.StatusOK, res.StatusCode, "valid until its time (rounded up to the hour)")
	h.Now = func() time.Time { return now.Add(7*24*time.Hour + time.Hour + time.Minute) }
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		res, _ := do(t, m, link)
		assert.Equal(t, http.StatusGone, res.StatusCode, m)
	}
	res, body := do(t, http.MethodGet, link)
	assert.Equal(t, "link_expired", body["error"].(map[string]any)["code"])
	h.Now = func() time.Time { return now.Add(10 * 365 * 24 * time.Hour) }
	res, _ = do(t, http.MethodGet, never)
	assert.Equal(t, http.StatusFound, res.StatusCode, "a tenant without link_ttl: never")
}

// Redis lost the call's file name: the click finds it in MyOperator's call log.
func TestFileFoundInTheCallLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, linker, _ := f.replica(t)
	link := linker.Link("acme", uid, call.Recording{FileName: "x.mp3"})
	f.mr.FlushAll()
	f.mo.hits = []json.RawMessage{
		json.RawMessage(`{"_id":"other","_source":{"event":1,"status":1,"filename":"other.mp3","additional_parameters":[{"ky":"ui","vl":"n2.1596270949.1"}]}}`),
		json.RawMessage(fmt.Sprintf(`{"_id":"5f11","_source":{"event":1,"status":1,"filename":"x.mp3","additional_parameters":[{"ky":"ui","vl":"%s"}]}}`, uid)),
	}
	res, _ := do(t, http.MethodGet, link)
	assert.Equal(t, http.StatusFound, res.StatusCode)
	assert.Equal(t, []string{"x.mp3"}, f.mo.asked)
	file, err := f.store.File(t.Context(), "acme", uid)
	require.NoError(t, err)
	assert.Equal(t, "x.mp3", file, "kept again")

	// A call id without MyOperator's time in it cannot be looked for.
	bare := linker.Link("acme", "5f114f490dbe2437", call.Recording{FileName: "x.mp3"})
	f.mr.FlushAll()
	searches := f.mo.search
	res, body := do(t, http.MethodGet, bare)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Equal(t, "recording_not_found", body["error"].(map[string]any)["code"])
	assert.Equal(t, searches, f.mo.search, "no search without a time to search around")
}

// Links written before short links keep working (with the cache and HEAD rule).
func TestLegacyLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, _, h := f.replica(t)
	link := h.Signer.LegacyURL("acme", uid, "x.mp3")
	res, _ := do(t, http.MethodHead, link)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Zero(t, f.mo.calls())
	for range 2 {
		res, _ = do(t, http.MethodGet, link)
		assert.Equal(t, http.StatusFound, res.StatusCode)
	}
	assert.Equal(t, 1, f.mo.calls())
	res, _ = do(t, http.MethodGet, strings.Replace(link, "x.mp3", "y.mp3", 1))
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
}

func TestLinkerFallsBackToMyOperatorsURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, linker, _ := f.replica(t)
	assert.Equal(t, "https://u", linker.Link("acme", "c", call.Recording{URL: "https://u"}), "no file name")
	off := &Linker{Signer: Signer{BaseURL: "https://x"}, Tenants: f.tenants}
	assert.Equal(t, "https://u", off.Link("acme", "c", call.Recording{URL: "https://u", FileName: "x.mp3"}), "no key")
}

// The whole path against the MyOperator sandbox: link → 302 → audio, MyOperator asked once.
func TestWithSandbox(t *testing.T) {
	t.Parallel()
	mo := mosandbox.New(mosandbox.Options{})
	moSrv := httptest.NewServer(mo)
	t.Cleanup(moSrv.Close)
	f := newFixture(t)
	f.tenants = tenant.NewRegistry(&tenant.Tenant{ID: "acme", MyOperatorAPI: moSrv.URL, MyOperatorKey: tenant.Secret(mo.Token())})
	_, linker, h := f.replica(t)
	h.MyOperator = nil // the real client
	h.AllowHTTPLoopback = true
	link := linker.Link("acme", uid, call.Recording{FileName: "e673c2f4.mp3"})
	for range 3 {
		res, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(link) // follows the redirect
		require.NoError(t, err)
		audio, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "audio/"), res.Header.Get("Content-Type"))
		assert.Equal(t, "RIFF", string(audio[:4]))
	}
	assert.Equal(t, 1, mo.RecordingLinks())
}

// LinkLen is the length of the links URL makes, with and without an expiry.
func TestLinkLen(t *testing.T) {
	s := Signer{BaseURL: "https://calltrack.example.com/", Keys: []tenant.Secret{"0123456789abcdef0123"}}
	const id = "n2.1796042288.1000001"
	for _, exp := range []time.Time{{}, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)} {
		link := s.URL("acme", id, exp)
		if got := s.LinkLen("acme", len(id), !exp.IsZero()); got != len(link) {
			t.Errorf("LinkLen = %d, link %q has %d", got, link, len(link))
		}
	}
}
