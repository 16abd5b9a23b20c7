package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/replay"
)

// Issue 11's check, as in `calltrack dev`: both sandbox CRMs lose a share of their
// answers (the write is applied, the connection closed with no answer) and fail others,
// while calls for a Kylas and a Zoho tenant arrive. Each call ends in its CRM exactly
// once, with its owner: a lost answer is resolved by looking the record up, never by a
// second create.
func TestLostAnswersWriteEachCallOnce(t *testing.T) {
	s := newStack(t, stackOpts{second: "zoho", kylasLimit: 100, writerSettle: 500 * time.Millisecond})
	s.mapAgent(sumit.id, "1001", sumit.email)
	r := s.do(adminReq(s, http.MethodPut, "beta", "/mappings/"+priya.id, `{"crm_user_id":"5725767000000411002"}`))
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	faults := sandbox.Faults{LostResponseRate: 0.3, ErrorRate: 0.15, Status: 503, LatencyMS: 30, SearchLagMS: 300}
	require.NoError(t, s.kylas.SetFaults(faults))
	require.NoError(t, s.zohoB.SetFaults(faults))

	const perTenant = 50
	kylasLeads, zohoLeads := len(s.kylas.Leads()), len(s.zohoB.Leads())
	kylasCalls, zohoCalls := s.postBothTenants(perTenant, nil)
	s.waitAllWritten(map[string][]string{tenantID: kylasCalls, "beta": zohoCalls}, 150*time.Second)

	s.assertOncePerCall(kylasCalls, zohoCalls)
	// Every call is from one unknown caller: one lead in each CRM, even when the lead's
	// create lost its answer.
	assert.Len(t, s.kylas.Leads(), kylasLeads+1, "Kylas leads")
	assert.Len(t, s.zohoB.Leads(), zohoLeads+1, "Zoho leads")
	ks, zs := s.kylas.Stats(), s.zohoB.Stats()
	t.Logf("kylas: %+v", ks)
	t.Logf("zoho: %+v", zs)
	assert.Zero(t, ks.Duplicates, "Kylas duplicates")
	assert.Zero(t, zs.Duplicates, "Zoho duplicates")
	assert.Len(t, s.kylas.Records(), perTenant)
	assert.Len(t, s.zohoB.Records(), perTenant)
	assert.Positive(t, ks.Lost, "Kylas lost answers: the fault was in play")
	assert.Positive(t, zs.Lost, "Zoho lost answers: the fault was in play")
}

// Redis loses the writer's state: calls written before are redelivered (a replay of the
// whole log topic) and add no record — they are looked up and adopted — while the
// parked calls come back from their topic and are written once their agent is mapped.
func TestRedisLossWritesNothingTwice(t *testing.T) {
	s := newStack(t, stackOpts{noWriter: true, kylasLimit: 100})
	stopWriter, _ := s.startWriter()
	s.mapAgent(sumit.id, "1001", sumit.email)
	var written, parked []string
	for range 8 {
		spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}}
		require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
		written = append(written, spec.uid)
	}
	for range 2 {
		spec := callSpec{uid: newUID(), status: 2, legs: []leg{{agents: []agent{priya}}}}
		require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
		parked = append(parked, spec.uid)
	}
	for _, uid := range written {
		s.waitStatus(uid, "written", within)
	}
	for _, uid := range parked {
		s.waitStatus(uid, "unattributed", within)
	}
	stopWriter()

	// Redis loses the writer's data: call states, parked set, epoch.
	ctx := context.Background()
	keys := []string{s.app.State.Keys().Epoch(), s.app.State.Keys().Parked(tenantID)}
	for _, uid := range append(append([]string{}, written...), parked...) {
		keys = append(keys, s.app.State.Keys().Call(tenantID, uid))
	}
	require.NoError(t, s.env.Redis.Del(ctx, keys...).Err())
	searchesBefore := s.kylas.Stats().ByEndpoint["POST /v1/call-logs/search"]

	s.startWriter()
	testenvEventually(t, 30*time.Second, "parked calls restored from their topic", func() bool {
		p, err := s.app.State.Parked(ctx, tenantID)
		return err == nil && len(p) == len(parked)
	})
	// Every call log comes again.
	res, err := replay.Run(ctx, replay.Options{Kafka: s.app.Kafka, Publisher: s.app.Producer, Topics: s.env.Topics, Trace: s.app.Trace,
		Topic: "log"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, len(written)+len(parked), res.Replayed)
	testenvEventually(t, 60*time.Second, "the replayed calls looked up in the CRM", func() bool {
		return s.kylas.Stats().ByEndpoint["POST /v1/call-logs/search"]-searchesBefore >= len(written)
	})
	for _, uid := range written {
		s.waitStage(uid, "adopted", 60*time.Second)
	}
	assert.Len(t, s.kylas.Records(), len(written), "no call written twice")
	assert.Zero(t, s.kylas.Stats().Duplicates)

	// The parked calls are still there for late binding.
	s.mapAgent(priya.id, "1002", priya.email)
	for _, uid := range parked {
		recs := s.waitRecords(uid, 1, 60*time.Second)
		assert.EqualValues(t, 1002, recs[0].Owner.ID)
	}
	assert.Len(t, s.kylas.Records(), len(written)+len(parked))
}

// waitAllWritten waits until every call's trace says written (calls by tenant).
func (s *stack) waitAllWritten(calls map[string][]string, d time.Duration) {
	s.t.Helper()
	var pending []string
	defer func() {
		if s.t.Failed() {
			s.t.Logf("not written: %v", pending)
		}
	}()
	testenvEventually(s.t, d, "every call written (trace status)", func() bool {
		pending = pending[:0]
		for tenant, uids := range calls {
			for _, uid := range uids {
				tr := s.do(adminReq(s, http.MethodGet, tenant, "/calls/"+uid, ""))
				if tr.Status != http.StatusOK || tr.Body["status"] != "written" {
					pending = append(pending, fmt.Sprintf("%s/%s %v %v", tenant, uid, tr.Body["status"], stages(tr.Body)))
				}
			}
		}
		return len(pending) == 0
	})
}

// postBothTenants posts n calls for each of the stack's tenants at once — tenant acme's
// answered by sumit (Kylas, user 1001), beta's missed by priya (Zoho) — one pair per
// tick of pace when given, and returns their call ids.
func (s *stack) postBothTenants(n int, pace <-chan time.Time) (kylasCalls, zohoCalls []string) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for range n {
		if pace != nil {
			<-pace
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}}
			require.Equal(s.t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
			mu.Lock()
			kylasCalls = append(kylasCalls, spec.uid)
			mu.Unlock()
		}()
		go func() {
			defer wg.Done()
			spec := callSpec{uid: newUID(), status: 2, legs: []leg{{agents: []agent{priya}}}}
			require.Equal(s.t, http.StatusOK, s.postAs("beta", "beta-token", afterCall(spec)).Status)
			mu.Lock()
			zohoCalls = append(zohoCalls, spec.uid)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return kylasCalls, zohoCalls
}

// assertOncePerCall checks that each call of postBothTenants has exactly one record in
// its CRM, owned by its agent's user (Kylas 1001, Zoho 5725767000000411002).
func (s *stack) assertOncePerCall(kylasCalls, zohoCalls []string) {
	s.t.Helper()
	kylasPer := map[string]int{}
	for _, rec := range s.kylas.Records() {
		kylasPer[rec.CallID()]++
		assert.EqualValues(s.t, 1001, rec.Owner.ID, "owner of %s", rec.CallID())
	}
	for _, uid := range kylasCalls {
		assert.Equal(s.t, 1, kylasPer[uid], "Kylas records of %s", uid)
	}
	zohoPer := map[string]int{}
	for _, rec := range s.zohoB.Records() {
		if m := zohoCallID.FindStringSubmatch(rec.Description); m != nil {
			zohoPer[m[1]]++
		}
		assert.Equal(s.t, "5725767000000411002", rec.Owner.ID)
	}
	for _, uid := range zohoCalls {
		assert.Equal(s.t, 1, zohoPer[uid], "Zoho records of %s", uid)
	}
}
