package crm

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
