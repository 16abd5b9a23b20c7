package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/calltrack/calltrack/internal/crm/zoho"
)

// CALLTRACK_ZOHO_BATCH_LINGER=0 turns the adaptive wait off (every insert waits the
// fixed 200 ms), as README says; it must not become the adapter's 2 s default.
func TestZohoMaxLinger(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, zoho.DefaultLinger},
		{-time.Second, zoho.DefaultLinger},
		{100 * time.Millisecond, 100 * time.Millisecond},
		{2 * time.Second, 2 * time.Second},
	} {
		assert.Equal(t, tc.want, zohoMaxLinger(tc.in), tc.in.String())
	}
}
