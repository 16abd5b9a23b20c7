package usersync_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/usermatch/usermatchtest"
	"github.com/calltrack/calltrack/internal/usersync"
)

// What an operator's dashboard shows: a tenant's syncs by outcome, its matched and
// unmatched users, when it last succeeded, and the changes syncs made.
func TestSyncMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{})
	m := metrics.New()
	f.svc.Metrics = m.UserSync
	f.mo.set(usermatchtest.Agent("a1", "asha@example.com", true), usermatchtest.Agent("a2", "ravi@example.com", true))
	f.crm.set(usermatchtest.CRMUser("101", "asha@example.com", true))
	f.sync(t)

	f.crm.err = errors.New("CRM users API: 503")
	_, err := f.svc.Sync(t.Context(), "acme", usersync.Options{})
	require.ErrorIs(t, err, usersync.ErrUpstream)

	want := `
# HELP calltrack_user_sync_runs_total User syncs, by tenant and outcome (ok, failed, busy: another replica was syncing).
# TYPE calltrack_user_sync_runs_total counter
calltrack_user_sync_runs_total{outcome="failed",tenant="acme"} 1
calltrack_user_sync_runs_total{outcome="ok",tenant="acme"} 1
# HELP calltrack_user_sync_matched Mappings in force after the tenant's last user sync.
# TYPE calltrack_user_sync_matched gauge
calltrack_user_sync_matched{tenant="acme"} 1
# HELP calltrack_user_sync_unmatched Users (MyOperator or CRM) the tenant's last user sync left unmatched.
# TYPE calltrack_user_sync_unmatched gauge
calltrack_user_sync_unmatched{tenant="acme"} 1
# HELP calltrack_user_sync_changes_total Mapping changes made by user syncs, by change.
# TYPE calltrack_user_sync_changes_total counter
calltrack_user_sync_changes_total{change="added"} 1
`
	require.NoError(t, testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"calltrack_user_sync_runs_total", "calltrack_user_sync_matched", "calltrack_user_sync_unmatched", "calltrack_user_sync_changes_total"))
	require.InDelta(t, float64(usermatchtest.T0.Unix()), testutil.ToFloat64(m.UserSync.LastSuccess.WithLabelValues("acme")), 1)
	require.Equal(t, 1, testutil.CollectAndCount(m.UserSync.Duration))
}
