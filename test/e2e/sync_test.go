package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/segmentio/kafka-go"
)

// Users of the sync scenario: on MyOperator (agents) and on the CRM (Kylas users).
var (
	syncSumit = agent{"5cd40f6556f2f124", "Sumit", "sumit.arya@example.com", "10", "8586848544"} // exact match: CRM 1001
	syncPriya = agent{"5cd40f6556f2f125", "Priya", "Priya@Example.com", "11", "8586848545"}      // case differs: CRM 1002
	syncRavi  = agent{"5cd40f6556f2f126", "Ravi", "ravi@example.com", "12", "8586848546"}        // no counterpart
	syncAsha  = agent{"5cd40f6556f2f127", "Asha", "asha@example.com", "13", "8586848547"}        // CRM 1004 is inactive
	syncMeena = agent{"5cd40f6556f2f128", "Meena", "meena@example.com", "14", "8586848548"}      // exact match: CRM 1005
)

// put sends a JSON PUT to a sandbox control endpoint, as an admin's curl would.
func (s *stack) put(url string, body any) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	r := s.do(req)
	require.Equal(s.t, http.StatusOK, r.Status, "PUT %s: %v", url, r.Body)
}

func (s *stack) putAgent(a agent, enabled bool) {
	s.put(s.moSrv.URL+"/users/"+a.id, map[string]any{"name": a.name, "email": a.email, "contact_number": a.phone10, "is_enabled": enabled})
}

func (s *stack) putCRMUser(id int, first, email string, active bool) {
	s.put(fmt.Sprintf("%s/users/%d", s.crmSrv.URL, id), map[string]any{"firstName": first, "lastName": "K", "email": email, "active": active})
}

// reasons indexes a report's unmatched users by side and id.
func reasons(body map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, u := range body["unmatched"].([]any) {
		u := u.(map[string]any)
		out[u["side"].(string)+":"+u["id"].(string)] = u
	}
	return out
}

// The check, as an admin does it: users on both sandboxes, a call of an
// agent not matched yet, a sync (report with reasons; the parked call written under
// the new owner), a deactivation and resync (the agent's next call not attributed to
// that user), and Redis's mappings flushed and rebuilt from the topic.
func TestUserSyncScenario(t *testing.T) {
	s := newStack(t, stackOpts{})

	// Users on both sandboxes, over their HTTP control endpoints.
	for _, a := range []agent{syncSumit, syncPriya, syncRavi, syncAsha, syncMeena} {
		s.putAgent(a, true)
	}
	s.putCRMUser(1001, "Sumit", "sumit.arya@example.com", true)
	s.putCRMUser(1002, "Priya", "priya@example.com", true)
	s.putCRMUser(1004, "Asha", "asha@example.com", false)
	s.putCRMUser(1005, "Meena", "meena@example.com", true)

	// A call of Sumit before any sync: kept unattributed, nothing in the CRM.
	first := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{syncSumit}, answered: true}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(first), token).Status)
	s.waitStatus(first.uid, "unattributed", within)
	assert.Empty(t, s.records(first.uid))

	// The sync endpoints are admin endpoints.
	req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/admin/v1/tenants/"+tenantID+"/sync", nil)
	assert.Equal(t, http.StatusUnauthorized, s.do(req).Status)

	// Run the sync: the report lists the matches and every unmatched user with its reason.
	r := s.admin(http.MethodPost, "/sync", nil)
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	assert.NotEmpty(t, r.Body["last_sync_at"])
	assert.ElementsMatch(t, []any{
		map[string]any{"myoperator_user_id": syncSumit.id, "crm_user_id": "1001", "email": syncSumit.email, "source": "email-match", "status": "active", "name": "Sumit K"},
		map[string]any{"myoperator_user_id": syncMeena.id, "crm_user_id": "1005", "email": syncMeena.email, "source": "email-match", "status": "active", "name": "Meena K"},
	}, r.Body["matched"])
	why := reasons(r.Body)
	assert.Len(t, why, 5, "%v", why)
	assert.Equal(t, "email_case_differs", why["myoperator:"+syncPriya.id]["reason"])
	assert.Contains(t, why["myoperator:"+syncPriya.id]["detail"], `"priya@example.com"`, "the admin is told which address matches ignoring case")
	assert.Equal(t, map[string]any{"side": "crm", "id": "1002", "email": "priya@example.com"}, why["myoperator:"+syncPriya.id]["counterpart"])
	assert.Equal(t, "email_case_differs", why["crm:1002"]["reason"])
	assert.Equal(t, "no_match", why["myoperator:"+syncRavi.id]["reason"])
	assert.Equal(t, "inactive", why["crm:1004"]["reason"])
	assert.Equal(t, "counterpart_inactive", why["myoperator:"+syncAsha.id]["reason"])
	report := s.admin(http.MethodGet, "/sync/report", nil)
	require.Equal(t, http.StatusOK, report.Status)
	assert.Equal(t, r.Body["unmatched"], report.Body["unmatched"])

	// The parked call is written under the newly matched owner, by nobody's replay;
	// its trace shows why.
	recs := s.waitRecords(first.uid, 1, within)
	assert.EqualValues(t, 1001, recs[0].Owner.ID, "owner of the late-bound call")
	tr := s.waitStatus(first.uid, "written", within)
	assert.Subset(t, stages(tr), []string{"unattributed", trace.StageReattributed, "written"})

	// The CRM deactivates Sumit's user; after a resync his next call is not theirs.
	s.putCRMUser(1001, "Sumit", "sumit.arya@example.com", false)
	r = s.admin(http.MethodPost, "/sync", nil)
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	assert.Contains(t, r.Body["changes"], map[string]any{"myoperator_user_id": syncSumit.id, "change": "removed", "crm_user_id": "1001",
		"detail": "CRM user 1001 is deactivated"})
	next := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{syncSumit}, answered: true}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(next), token).Status)
	tr = s.waitStatus(next.uid, "unattributed", within)
	assert.Nil(t, tr["owner"])
	assert.Empty(t, s.records(next.uid), "not written to the deactivated user")

	// The mapping changes are on the journal topic, with who made them.
	journal := s.readTopic(s.env.Topics.Mapping, 3, func(m kafka.Message) bool {
		return kafkabus.Header(m, mapping.HeaderActor) == "sync"
	})
	assert.Len(t, journal, 3, "two matches, one removal")

	// Redis loses the mappings; the rebuild from the topic restores the same ones.
	s.mapAgent(syncRavi.id, "1003", syncRavi.email) // a manual one too
	before := s.admin(http.MethodGet, "/mappings", nil)
	require.Len(t, before.Body["mappings"], 2)
	require.NoError(t, s.app.Mappings.Flush(t.Context(), tenantID))
	assert.Empty(t, s.admin(http.MethodGet, "/mappings", nil).Body["mappings"])
	st, err := s.app.RebuildMappings(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, st.Mappings[tenantID])
	assert.Equal(t, before.Body, s.admin(http.MethodGet, "/mappings", nil).Body)
}

// Where a tenant requires approval, a match waits as pending; approving it writes
// the agent's parked call.
func TestUserSyncApproval(t *testing.T) {
	s := newStack(t, stackOpts{sync: tenant.Sync{RequireApproval: true}})
	s.putAgent(syncMeena, true)
	s.putCRMUser(1005, "Meena", "meena@example.com", true)
	call := callSpec{uid: newUID(), status: 2, legs: []leg{{agents: []agent{syncMeena}}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(call), token).Status)
	s.waitStatus(call.uid, "unattributed", within)

	r := s.admin(http.MethodPost, "/sync", nil)
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	assert.Equal(t, "pending", r.Body["matched"].([]any)[0].(map[string]any)["status"])
	assert.Empty(t, s.records(call.uid), "pending attributes nothing")

	a := s.admin(http.MethodPost, "/mappings/"+syncMeena.id+"/approve", nil)
	require.Equal(t, http.StatusOK, a.Status, "%v", a.Body)
	assert.Equal(t, "active", a.Body["status"])
	recs := s.waitRecords(call.uid, 1, within)
	assert.EqualValues(t, 1005, recs[0].Owner.ID)
}
