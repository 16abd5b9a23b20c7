package moapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/myoperator/sandbox"
)

func TestRecordingLinkAgainstSandbox(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Token: "tok-123"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)

	link, err := moapi.New(srv.URL, "tok-123").RecordingLink(t.Context(), "e673c2f4a1b94d37.mp3")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(link.URL, srv.URL+"/audio/e673c2f4a1b94d37.mp3?expires="), link.URL)
	assert.WithinDuration(t, time.Now().Add(sandbox.RecordingLinkTTL), link.ExpiresAt, time.Minute, "the answer's expires_at")

	_, err = moapi.New(srv.URL, "wrong-token").RecordingLink(t.Context(), "e673c2f4a1b94d37.mp3")
	var me *moapi.Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, http.StatusBadRequest, me.Status)
	assert.True(t, me.Permanent)
	assert.NotContains(t, err.Error(), "wrong-token", "the token never shows in errors")

	sb.RemoveRecording("gone.mp3")
	_, err = moapi.New(srv.URL, "tok-123").RecordingLink(t.Context(), "gone.mp3")
	require.ErrorIs(t, err, moapi.ErrRecordingNotFound)
	_, err = moapi.New(srv.URL, "").RecordingLink(t.Context(), "x.mp3")
	require.Error(t, err)
}

// MyOperator's answer is not documented: the link is taken wherever integrators
// have found it, and a non-http link is never returned.
func TestRecordingLinkAnswerShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		status     int
		link       string
		notFound   bool
	}{
		{"data.url", `{"status":"success","code":200,"data":{"url":"https://m.example/a.mp3"}}`, 200, "https://m.example/a.mp3", false},
		{"url", `{"url":"https://m.example/b.mp3"}`, 200, "https://m.example/b.mp3", false},
		{"link", `{"status":"success","link":" https://m.example/c.mp3 "}`, 200, "https://m.example/c.mp3", false},
		{"data a string", `{"status":"success","data":"https://m.example/d.mp3"}`, 200, "https://m.example/d.mp3", false},
		{"data.link", `{"data":{"link":"https://m.example/e.mp3"}}`, 200, "https://m.example/e.mp3", false},
		{"error with 200", `{"status":"error","code":404,"message":"Recording not found"}`, 200, "", true},
		{"404", `{"status":"error","message":"nope"}`, 404, "", true},
		{"not a URL", `{"status":"success","data":{"url":"javascript:alert(1)"}}`, 200, "", false},
		{"5xx", `oops`, 502, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/recordings/link" || r.URL.Query().Get("token") != "tok" || r.URL.Query().Get("file") != "f.mp3" {
					http.Error(w, "bad request", http.StatusTeapot)
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			link, err := moapi.New(srv.URL+"/", "tok").RecordingLink(t.Context(), "f.mp3")
			if tt.link != "" {
				require.NoError(t, err)
				assert.Equal(t, tt.link, link.URL)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.notFound, errors.Is(err, moapi.ErrRecordingNotFound), "%v", err)
		})
	}
}
