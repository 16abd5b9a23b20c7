package recording

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	mosandbox "github.com/calltrack/calltrack/internal/myoperator/sandbox"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

const key = "test-recording-signing-key"

func TestSignerLink(t *testing.T) {
	t.Parallel()
	s := Signer{BaseURL: "https://calltrack.example.com/", Key: key}
	rec := call.Recording{URL: "https://app.myoperator.co/audio/x", FileName: "x.mp3"}
	link := s.Link("acme", "n2.1596270949.2175190", rec)
	u, err := url.Parse(link)
	require.NoError(t, err)
	assert.Equal(t, "calltrack.example.com", u.Host)
	assert.Equal(t, "/recordings/acme/n2.1596270949.2175190", u.Path)
	assert.Equal(t, "x.mp3", u.Query().Get("file"))
	assert.True(t, s.Verify("acme", "n2.1596270949.2175190", "x.mp3", u.Query().Get("sig")))

	// Anything changed fails: the call, the tenant, the file, the key.
	sig := u.Query().Get("sig")
	assert.False(t, s.Verify("acme", "n2.1596270949.2175191", "x.mp3", sig))
	assert.False(t, s.Verify("acme2", "n2.1596270949.2175190", "x.mp3", sig))
	assert.False(t, s.Verify("acme", "n2.1596270949.2175190", "y.mp3", sig))
	assert.False(t, Signer{Key: key + "2"}.Verify("acme", "n2.1596270949.2175190", "x.mp3", sig))
	assert.False(t, s.Verify("acme", "n2.1596270949.2175190", "x.mp3", ""))
	// Fields cannot shift between each other.
	assert.NotEqual(t, s.Sign("ab", "c", "d"), s.Sign("a", "bc", "d"))

	// No file name, no base URL or no key: MyOperator's URL as it came.
	assert.Equal(t, "https://u", s.Link("acme", "c", call.Recording{URL: "https://u"}))
	assert.Equal(t, rec.URL, Signer{Key: key}.Link("acme", "c", rec))
	assert.Equal(t, rec.URL, Signer{BaseURL: "https://x"}.Link("acme", "c", rec))
	assert.Equal(t, rec.URL, Signer{BaseURL: "https://x", Key: "short"}.Link("acme", "c", rec))
	assert.False(t, Signer{Key: "short"}.Verify("a", "b", "c", Signer{Key: "short"}.Sign("a", "b", "c")), "a short key verifies nothing")
}

type fakeExchanger struct {
	link string
	err  error
	got  []string
}

func (f *fakeExchanger) RecordingLink(_ context.Context, file string) (moapi.Link, error) {
	f.got = append(f.got, file)
	return moapi.Link{URL: f.link, ExpiresAt: time.Now().Add(moapi.RecordingLinkValidity)}, f.err
}

func server(t *testing.T, h *Handler) *httptest.Server {
	t.Helper()
	e := web.New(zerolog.Nop(), nil, nil)
	h.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u string) (*http.Response, map[string]any) {
	t.Helper()
	res, err := noFollow.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &body)
	return res, body
}

func TestHandler(t *testing.T) {
	t.Parallel()
	tenants := tenant.NewRegistry(
		&tenant.Tenant{ID: "acme", MyOperatorKey: "mo-token"},
		&tenant.Tenant{ID: "nokey"})
	ex := &fakeExchanger{link: "https://media.myoperator.co/x.mp3?exp=1"}
	h := &Handler{Tenants: tenants, Exchanger: func(*tenant.Tenant) Exchanger { return ex }, Log: zerolog.Nop()}
	srv := server(t, h)
	h.Signer = Signer{BaseURL: srv.URL, Key: key}
	link := h.Signer.URL("acme", "n2.1.2", "x.mp3")

	res, _ := get(t, link)
	assert.Equal(t, http.StatusFound, res.StatusCode)
	assert.Equal(t, ex.link, res.Header.Get("Location"))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Equal(t, []string{"x.mp3"}, ex.got)

	// A changed or missing signature: 403 with calltrack's error body.
	for _, bad := range []string{
		strings.Replace(link, "sig=", "sig=A", 1),
		strings.Replace(link, "x.mp3", "y.mp3", 1),
		strings.Replace(link, "n2.1.2", "n2.1.3", 1),
		strings.Split(link, "&sig=")[0],
		srv.URL + "/recordings/acme/n2.1.2",
	} {
		res, body := get(t, bad)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, bad)
		assert.Equal(t, map[string]any{"error": map[string]any{"code": "forbidden", "message": "missing or wrong recording link signature"}}, body)
	}
	assert.Len(t, ex.got, 1, "no exchange for a bad link")

	// MyOperator knows no such recording; MyOperator fails; the tenant has no token.
	ex.err = &moapi.Error{Op: "moapi: recording link", Status: 404, Err: moapi.ErrRecordingNotFound}
	res, body := get(t, link)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Equal(t, "recording_not_found", body["error"].(map[string]any)["code"])
	ex.err = errors.New("timeout")
	res, _ = get(t, link)
	assert.Equal(t, http.StatusBadGateway, res.StatusCode)
	res, body = get(t, h.Signer.URL("nokey", "c", "x.mp3"))
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Equal(t, "recording_unavailable", body["error"].(map[string]any)["code"])
	res, _ = get(t, h.Signer.URL("gone", "c", "x.mp3"))
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

// The whole path against the MyOperator sandbox: link → 302 → audio.
func TestHandlerWithSandbox(t *testing.T) {
	t.Parallel()
	mo := mosandbox.New(mosandbox.Options{})
	moSrv := httptest.NewServer(mo)
	t.Cleanup(moSrv.Close)
	tenants := tenant.NewRegistry(&tenant.Tenant{ID: "acme", MyOperatorAPI: moSrv.URL, MyOperatorKey: tenant.Secret(mo.Token())})
	h := &Handler{Tenants: tenants, Log: zerolog.Nop()}
	srv := server(t, h)
	h.Signer = Signer{BaseURL: srv.URL, Key: key}
	link := h.Signer.Link("acme", "n2.1.2", call.Recording{FileName: "e673c2f4.mp3"})

	res, err := http.Get(link) // follows the redirect
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "audio/"), res.Header.Get("Content-Type"))
	audio, _ := io.ReadAll(res.Body)
	assert.Equal(t, "RIFF", string(audio[:4]))
	assert.Equal(t, 1, mo.RecordingLinks())

	mo.RemoveRecording("e673c2f4.mp3")
	r, _ := get(t, link)
	assert.Equal(t, http.StatusNotFound, r.StatusCode)
}
