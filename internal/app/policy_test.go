package app

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

// `calltrack dev`'s tenant demo as the README shows it, after its "Try it" (which maps
// the sample's agent to 1001): a missed sales call of an unmapped agent is written to
// CRM user 1002 (department fallback) with one follow-up task for that owner.
func TestDevDemoCallPolicy(t *testing.T) {
	d := runDev(t)
	req, _ := http.NewRequest(http.MethodPut, d.Base+"/admin/v1/tenants/demo/mappings/5cd40f6556f2f124",
		strings.NewReader(`{"crm_user_id":"1001","email":"sumit.arya@example.com","phones":["+918586848544"]}`))
	req.Header.Set("Authorization", "Bearer "+DevAdminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "Try it's mapping")

	sample, err := http.Get(d.Base + "/sandbox/myoperator/samples/aftercall.json")
	require.NoError(t, err)
	raw, _ := io.ReadAll(sample.Body)
	sample.Body.Close()
	// The README's sed: missed, its own call UID and afterCall log id, and the agent Ravi
	// Kumar, whom no mapping names (by id, email or phone).
	payload := strings.NewReplacer(`"_su":1`, `"_su":2`, `"ANSWER"`, `"NOANSWER"`,
		"n2.1596270949.2175190", "n2.1596270949.3000001", "5f114f490dbe2437", "5f114f490dbe3001",
		"5cd40f6556f2f124", "7a1b2c3d4e5f6a7b", `"Sumit"`, `"Ravi Kumar"`, "sumit.arya@example.com", "ravi.kumar@example.com",
		"8586848544", "9811122233").Replace(string(raw))
	res, err = http.PostForm(d.Base+"/webhooks/myoperator/demo/aftercall?token=demo-token", url.Values{"myoperator": {payload}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	testenv.Eventually(t, 30*time.Second, "the call's follow-up task in the sandbox CRM", func() bool {
		return len(d.Kylas.Tasks()) == 1
	})
	recs := d.Kylas.Records()
	require.Len(t, recs, 1)
	assert.EqualValues(t, 1002, recs[0].Owner.ID, "department sales's fallback owner")
	assert.Contains(t, recs[0].Notes[0].Description, "Owner: department sales's fallback owner 1002")
	ts := d.Kylas.Tasks()
	assert.EqualValues(t, 1002, ts[0].AssignedTo)
	assert.Equal(t, "Call back +91 97116 36496", ts[0].Name)
}
