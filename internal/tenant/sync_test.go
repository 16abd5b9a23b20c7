package tenant_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/tenant"
)

func TestSyncSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       tenant.Sync
		err        string
	}{
		{"defaults", "", tenant.Sync{Match: "email", Interval: 6 * time.Hour}, ""},
		{"all set", "    sync: {match: email_ci, roles: [Sales Agent, Manager], require_approval: true, interval: 30m}\n",
			tenant.Sync{Match: "email_ci", Roles: []string{"Sales Agent", "Manager"}, RequireApproval: true, Interval: 30 * time.Minute}, ""},
		{"custom field", "    sync: {match: \"field:MyOperator_ID\"}\n", tenant.Sync{Match: "field:MyOperator_ID", Interval: 6 * time.Hour}, ""},
		{"phone", "    sync: {match: phone}\n", tenant.Sync{Match: "phone", Interval: 6 * time.Hour}, ""},
		{"unknown match", "    sync: {match: username}\n", tenant.Sync{}, `sync.match "username"`},
		{"field without a name", "    sync: {match: \"field:\"}\n", tenant.Sync{}, "name the field"},
		{"bad interval", "    sync: {interval: soon}\n", tenant.Sync{}, `sync.interval "soon"`},
		{"too often", "    sync: {interval: 10s}\n", tenant.Sync{}, "at least 1m"},
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
			assert.Equal(t, tc.want, tn.Sync)
		})
	}
}
