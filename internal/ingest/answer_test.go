package ingest

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A webhook's answer is the body Echo's c.JSON would write, byte for byte, with every
// optional field set or not.
func TestAnswerIsWhatEchoWrites(t *testing.T) {
	require.Equal(t, 6, reflect.TypeFor[answer]().NumField(), "a field added to answer: add it to appendJSON and to this table")
	yes, no := true, false
	for _, a := range []answer{
		{},
		{Status: "accepted", Tenant: "acme", CallID: "s1de2f<&>\"\\\u2028"},
		{Status: "kept", Tenant: "acme", CallID: "c", EventType: "call.end", Provisional: &yes, Spooled: true},
		{Status: "accepted", Tenant: "acme", CallID: "c", EventType: "call.summary", Provisional: &no},
	} {
		e := echo.New()
		want := httptest.NewRecorder()
		require.NoError(t, e.NewContext(httptest.NewRequest(http.MethodPost, "/", nil), want).JSON(http.StatusOK, a))
		got := httptest.NewRecorder()
		require.NoError(t, e.NewContext(httptest.NewRequest(http.MethodPost, "/", nil), got).JSONBlob(http.StatusOK, a.appendJSON(nil)))
		assert.Equal(t, want.Body.String(), got.Body.String())
		assert.Equal(t, want.Header(), got.Header())
	}
}
