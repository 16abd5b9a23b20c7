package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
)

// /readyz tells the public only whether calltrack is ready; the failing check's error
// (which can name hosts and settings) goes to the log and to operators.
func TestReadyzDetailsOnlyForOperators(t *testing.T) {
	var logs bytes.Buffer
	checks := map[string]Check{
		"kafka": func(context.Context) error { return nil },
		"redis": func(context.Context) error { return errors.New("dial tcp redis.internal:6379: connection refused") },
	}
	e := New(zerolog.New(&logs), nil, checks, WithReadyDetails(func(c echo.Context) bool {
		return c.Request().Header.Get("Authorization") == "Bearer op"
	}))
	get := func(auth string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	status, body := get("")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.JSONEq(t, `{"status":"not ready"}`, body)
	status, body = get("Bearer op")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.JSONEq(t, `{"status":"not ready","checks":{"kafka":"ok","redis":"dial tcp redis.internal:6379: connection refused"}}`, body)
	assert.Contains(t, logs.String(), "redis.internal:6379", "the log has the details")
}

// The access log never holds a route's token: a recording link's path is the link
// itself, and a logged one would give the call's audio to whoever reads the log.
func TestAccessLogHidesARoutesToken(t *testing.T) {
	var logs bytes.Buffer
	e := New(zerolog.New(&logs).Level(zerolog.DebugLevel), nil, nil)
	e.GET("/r/:tenant/:call/:token", func(c echo.Context) error { return c.NoContent(http.StatusForbidden) })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/r/acme/n2.1596270949.2175190/Zm9vYmFyc2lnbmF0dXJlMTIz", nil))
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Contains(t, logs.String(), `"path":"/r/acme/n2.1596270949.2175190/[token]"`)
	assert.NotContains(t, logs.String(), "Zm9vYmFyc2lnbmF0dXJlMTIz")
}
