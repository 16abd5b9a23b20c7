package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/testenv"
)

func testenvEventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, d, what, cond)
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, within, what, cond)
}

func sandboxFaults(rate float64, status int) sandbox.Faults {
	return sandbox.Faults{ErrorRate: rate, Status: status}
}

// waitDuplicates waits until the writer has handled n redelivered call logs (and
// skipped them), so that a count of CRM records afterwards is meaningful.
func waitDuplicates(t *testing.T, s *stack, n int) {
	t.Helper()
	waitFor(t, "writer consumed the replayed events", func() bool {
		return testutil.ToFloat64(s.app.Metrics.WriterOutcomes.WithLabelValues(tenantID, "log", "duplicate")) >= float64(n)
	})
}

func afterCallLogID(t *testing.T, s *stack, callID string) string {
	t.Helper()
	r := s.trace(callID)
	require.Equal(t, http.StatusOK, r.Status)
	id, _ := r.Body["log_id"].(string)
	require.NotEmpty(t, id)
	return id
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
