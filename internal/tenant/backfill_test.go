package tenant_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/tenant"
)

func TestBackfillSettings(t *testing.T) {
	t.Parallel()
	def := tenant.Backfill{Interval: 15 * time.Minute, Window: 2 * time.Hour, Settle: 5 * time.Minute, RatePerMinute: 20}
	for _, tc := range []struct {
		name, yaml string
		want       tenant.Backfill
		err        string
	}{
		{"defaults", "", def, ""},
		{"all set", "    backfill: {enabled: true, interval: 5m, window: 1h, settle: 2m, rate: 10}\n",
			tenant.Backfill{Interval: 5 * time.Minute, Window: time.Hour, Settle: 2 * time.Minute, RatePerMinute: 10}, ""},
		{"off", "    backfill: {enabled: false}\n", func() tenant.Backfill { b := def; b.Disabled = true; return b }(), ""},
		{"rate per second", "    backfill: {rate: 1/s}\n", func() tenant.Backfill { b := def; b.RatePerMinute = 60; return b }(), ""},
		{"rate per hour", "    backfill: {rate: 600/h}\n", func() tenant.Backfill { b := def; b.RatePerMinute = 10; return b }(), ""},
		{"bad rate", "    backfill: {rate: fast}\n", tenant.Backfill{}, `backfill.rate: "fast"`},
		{"bad unit", "    backfill: {rate: 20/d}\n", tenant.Backfill{}, "unit must be"},
		{"too often", "    backfill: {interval: 30s}\n", tenant.Backfill{}, "at least 1m"},
		{"window shorter than interval", "    backfill: {interval: 1h, window: 30m}\n", tenant.Backfill{}, "at least the interval"},
		{"window over 7 days", "    backfill: {window: 200h}\n", tenant.Backfill{}, "at most 7d"},
		{"settle over window", "    backfill: {window: 30m, interval: 15m, settle: 1h}\n", tenant.Backfill{}, "less than the window"},
		{"bad duration", "    backfill: {window: often}\n", tenant.Backfill{}, `backfill.window "often"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg, err := loadAcme(t, tc.yaml)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), "tenant acme")
				return
			}
			require.NoError(t, err)
			tn, _ := reg.Get("acme")
			assert.Equal(t, tc.want, tn.Backfill)
		})
	}
}

// loadAcme loads a tenants file of one Kylas tenant "acme" with block added to it
// (indented as its settings), every secret variable set.
func loadAcme(t *testing.T, block string) (*tenant.Registry, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tenants.yaml")
	require.NoError(t, os.WriteFile(p, []byte("tenants:\n  acme:\n    webhook_token_env: W\n    crm: {kind: kylas, api_key_env: K}\n"+block), 0o600))
	return tenant.Load(p, func(string) string { return "x" })
}
