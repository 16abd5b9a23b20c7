package crm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A failed round trip's error names no URL: its query may hold a customer's number.
func TestTransportErrorDropsTheURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:1/crm/v8/Leads/search?phone=%2B919876543210", nil)
	_, err := http.DefaultClient.Do(req)
	assert.Contains(t, err.Error(), "9876543210", "precondition: net/http names the URL")
	e := TransportError("zoho: search Leads", err)
	assert.NotContains(t, e.Error(), "9876543210")
	assert.False(t, e.Permanent)
}

func TestOutcomeUnknown(t *testing.T) {
	for status, unknown := range map[int]bool{500: true, 502: true, 504: true, 503: false, 429: false, 400: false} {
		e := StatusError("op", &http.Response{StatusCode: status, Header: http.Header{}}, "", "")
		assert.Equal(t, unknown, OutcomeUnknown(e), "status %d", status)
		assert.Equal(t, unknown, errors.Is(fmt.Errorf("wrapped: %w", e), ErrOutcomeUnknown), "status %d", status)
	}
	// Nothing listens on port 1: the dial fails, the request never left.
	_, err := http.Get("http://127.0.0.1:1/")
	assert.False(t, OutcomeUnknown(TransportError("op", err)), "%v", err)
	assert.True(t, OutcomeUnknown(TransportError("op", io.ErrUnexpectedEOF)))
}

func TestFindSettled(t *testing.T) {
	calls := 0
	begun := time.Now()
	_, found, err := FindSettled(t.Context(), 200*time.Millisecond, func(context.Context) (string, bool, error) {
		calls++
		return "", false, nil
	})
	require.NoError(t, err)
	assert.False(t, found)
	assert.Equal(t, 2, calls, "absent is asked twice: at once and after the settle time")
	assert.GreaterOrEqual(t, time.Since(begun), 200*time.Millisecond)

	calls = 0
	id, found, err := FindSettled(t.Context(), time.Hour, func(context.Context) (string, bool, error) {
		calls++
		return "r1", true, nil
	})
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, "r1", id)
	assert.Equal(t, 1, calls, "found needs no second search")

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, found, err = FindSettled(ctx, time.Hour, func(context.Context) (string, bool, error) { return "", false, nil })
	require.Error(t, err, "a lookup cut short is no answer")
	assert.False(t, found)
	assert.False(t, IsPermanent(err))
}
