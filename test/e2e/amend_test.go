package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11's migrating tenant: a v1 afterCall is written for a mapped agent, then the
// v2 summary of the same call names the agent by a v2 uuid no mapping knows, then its
// disposition arrives. The later version only amends the record: one record, the same
// owner, the trace stays written (never unattributed), and the disposition lands.
func TestLaterVersionWithUnresolvedAgentAmendsTheWrittenCall(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.mapAgent(sumit.id, "1001", "") // by the v1 id only: the v2 uuid does not resolve
	uid := newUID()
	v1 := afterCall(callSpec{uid: uid, status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}})
	require.Equal(t, http.StatusOK, s.postForm("aftercall", v1, token).Status)
	s.waitRecords(uid, 1, within)
	s.waitStatus(uid, "written", within)

	r := s.postV2(v2Call("call.summary", uid, "bridged", v2Leg{a: sumit, answered: true}))
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	r = s.postV2(v2Event("call.disposition", uid, map[string]any{"id": uid,
		"disposition": map[string]any{"id": "d7", "name": "Callback"}, "comment": "after 5pm"}))
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)

	waitFor(t, "disposition in the record's notes", func() bool {
		recs := s.records(uid)
		return len(recs) == 1 && strings.Contains(notes(recs[0]), "Disposition: Callback — after 5pm")
	})
	recs := s.records(uid)
	require.Len(t, recs, 1, "CRM records of the call")
	assert.EqualValues(t, 1001, recs[0].Owner.ID, "owner kept")
	tr := s.waitStatus(uid, "written", within)
	assert.Equal(t, map[string]any{"crm_user_id": "1001"}, tr["owner"])
	assert.NotContains(t, stages(tr), "unattributed", "the written call was never parked")
	p, err := s.app.State.Parked(t.Context(), tenantID)
	require.NoError(t, err)
	assert.Empty(t, p, "nothing parked")
}
