package partycache_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/kylas"
	"github.com/calltrack/calltrack/internal/crm/partycache"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/testenv"
)

func TestRedisCache(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	c := partycache.New(env.Redis, env.Prefix, "acme")
	_, ok, err := c.Get(ctx, "+919711636496")
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, c.Put(ctx, "+919711636496", crm.Party{Entity: crm.EntityLead, ID: "42", Name: "Ravi"}, time.Minute))
	p, ok, err := c.Get(ctx, "+919711636496")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, crm.Party{Entity: crm.EntityLead, ID: "42", Name: "Ravi"}, p)
	_, ok, _ = partycache.New(env.Redis, env.Prefix, "other").Get(ctx, "+919711636496")
	assert.False(t, ok, "per tenant")

	got, err := c.Claim(ctx, "+919711636496", "writer-a", time.Minute)
	require.NoError(t, err)
	assert.True(t, got)
	got, err = c.Claim(ctx, "+919711636496", "writer-b", time.Minute)
	require.NoError(t, err)
	assert.False(t, got, "held")
	require.NoError(t, c.Release(ctx, "+919711636496", "writer-b"))
	got, _ = c.Claim(ctx, "+919711636496", "writer-b", time.Minute)
	assert.False(t, got, "another writer's release does not end the claim")
	require.NoError(t, c.Release(ctx, "+919711636496", "writer-a"))
	got, _ = c.Claim(ctx, "+919711636496", "writer-b", time.Minute)
	assert.True(t, got)
}

// The claim's answer is lost after Redis carried it out: go-redis's own retry finds
// the writer's claim and takes it, rather than making the writer wait for itself for
// the claim's 30 s.
func TestLeadClaimWhoseAnswerWasLost(t *testing.T) {
	env := testenv.New(t)
	proxy := testenv.NewProxy(t, env.RedisAddr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	c := partycache.New(rdb, env.Prefix, "acme")
	ctx := t.Context()

	// A first claim loads the script, so the cut answer is the claim's own (EVALSHA),
	// not a NOSCRIPT refusal of a command that never ran.
	_, err := c.Claim(ctx, "+910000000000", "warm-up", time.Minute)
	require.NoError(t, err)
	require.NoError(t, c.Release(ctx, "+910000000000", "warm-up"))
	proxy.LoseAnswerTo("lead-claim:+919711636496")
	got, err := c.Claim(ctx, "+919711636496", "writer-a", time.Minute)
	require.Equal(t, 1, proxy.Cuts(), "the claim's answer was lost")
	require.NoError(t, err)
	assert.True(t, got, "the retried claim is the writer's own")
	got, err = c.Claim(ctx, "+919711636496", "writer-b", time.Minute)
	require.NoError(t, err)
	assert.False(t, got, "and nobody else's")
}

// Two replicas (two adapters) share the tenant's cache in Redis: a burst of first
// calls from an unknown number across both makes one lead, and after that a repeat
// caller costs one request per call — the write — on either replica.
func TestReplicasShareLookupsAndLeads(t *testing.T) {
	env := testenv.New(t)
	// The calls' owner (7) is a user: the sandbox refuses an owner that is not.
	sb := sandbox.NewKylas(sandbox.KylasOptions{Seed: 1, Users: []sandbox.KylasUser{{ID: 7, FirstName: "Asha", LastName: "Rao", Active: true}}})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	replica := func() *kylas.Adapter {
		a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key", BearerToken: "demo-kylas-oauth",
			Parties: partycache.New(env.Redis, env.Prefix, "acme"), Leads: crm.LeadPolicy{Create: true}})
		require.NoError(t, err)
		return a
	}
	replicas := []*kylas.Adapter{replica(), replica()}
	const number = "+919711636496"
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = replicas[i%2].CreateCall(t.Context(), crmtest.NewCall(fmt.Sprintf("b-%d", i), number, "7", call.Incoming, call.Answered))
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "call %d", i)
	}
	require.Len(t, sb.Leads(), 1, "one lead for the number across replicas")

	before := sb.Stats().Requests
	for i := range 10 {
		ctx, n := crm.WithRequestCounts(context.Background(), crm.RequestCreate)
		_, err := replicas[i%2].CreateCall(ctx, crmtest.NewCall(fmt.Sprintf("r-%d", i), number, "7", call.Incoming, call.Answered))
		require.NoError(t, err)
		total, _ := n()
		assert.Equal(t, 1.0, total, "a repeat caller costs the write alone")
	}
	assert.Equal(t, 10, sb.Stats().Requests-before)
	for _, r := range sb.Records() {
		assert.Equal(t, sb.Leads()[0].ID, r.RelatedTo[0].ID)
	}
}

// Forget drops the entry only while it names the forgotten record (entity and id):
// a party another writer cached since, or a pending marker, stays.
func TestRedisForget(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	c := partycache.New(env.Redis, env.Prefix, "acme")
	const number = "+919711636496"
	stale := crm.Party{Entity: crm.EntityLead, ID: "101", Name: "Ravi"}
	for _, tc := range []struct {
		name   string
		cached crm.Party
		forget crm.Party
		kept   bool
	}{
		{"the refused party", stale, crm.Party{Entity: crm.EntityLead, ID: "101"}, false},
		{"a party resolved since", crm.Party{Entity: crm.EntityLead, ID: "102"}, stale, true},
		{"same id, another entity", crm.Party{Entity: crm.EntityContact, ID: "101"}, stale, true},
		{"a cached no one", crm.Party{}, stale, true},
		{"a pending marker", crm.Party{Entity: "pending"}, stale, true},
	} {
		require.NoError(t, c.Put(ctx, number, tc.cached, time.Minute), tc.name)
		require.NoError(t, c.Forget(ctx, number, tc.forget), tc.name)
		got, ok, err := c.Get(ctx, number)
		require.NoError(t, err)
		assert.Equal(t, tc.kept, ok, tc.name)
		if tc.kept {
			assert.Equal(t, tc.cached, got, tc.name)
		}
	}
	require.NoError(t, c.Forget(ctx, "+910000000000", stale), "nothing cached: nothing to do")
	require.NoError(t, env.Redis.Set(ctx, env.Prefix+":crm:acme:party:"+number, "not json", time.Minute).Err())
	require.NoError(t, c.Forget(ctx, number, stale), "an entry it cannot read is left to expire")
}

// The reviewer's case: two sandbox CRMs on one Redis under the same tenant. The
// first cached the caller as its lead; the second has no such lead and refuses a call
// log related to it. The adapter forgets the entry, finds (or makes) the caller's lead
// in its own CRM and writes the call once, instead of dead-lettering it (crm_rejected
// "relatedTo[0].id: no lead with id …") for the entry's 5 minutes.
func TestStalePartyFromAnotherCRM(t *testing.T) {
	env := testenv.New(t)
	const number = "+919711636496"
	users := []sandbox.KylasUser{{ID: 7, FirstName: "Asha", LastName: "Rao", Active: true}}
	adapterOn := func(sb *sandbox.Kylas) *kylas.Adapter {
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key", BearerToken: "demo-kylas-oauth",
			Parties: partycache.New(env.Redis, env.Prefix, "acme"), Leads: crm.LeadPolicy{Create: true}})
		require.NoError(t, err)
		return a
	}
	first := sandbox.NewKylas(sandbox.KylasOptions{Seed: 1, Users: users})
	second := sandbox.NewKylas(sandbox.KylasOptions{Seed: 2, Users: users})
	second.AddContact(sandbox.KylasPerson{ID: 500, LastName: "Padding"}) // ids apart: the first's lead is no id here
	_, err := adapterOn(first).CreateCall(t.Context(), crmtest.NewCall("s-1", number, "7", call.Incoming, call.Answered))
	require.NoError(t, err)
	require.Len(t, first.Leads(), 1)
	cached, ok, err := partycache.New(env.Redis, env.Prefix, "acme").Get(t.Context(), number)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, strconv.FormatInt(first.Leads()[0].ID, 10), cached.ID)

	_, err = adapterOn(second).CreateCall(t.Context(), crmtest.NewCall("s-2", number, "7", call.Incoming, call.Answered))
	require.NoError(t, err)
	require.Len(t, second.Leads(), 1, "the caller's lead in the second CRM")
	lead := second.Leads()[0]
	recs := second.Records()
	require.Len(t, recs, 1, "written once")
	assert.Equal(t, lead.ID, recs[0].RelatedTo[0].ID)
	assert.Equal(t, int64(7), recs[0].Owner.ID)
	cached, _, _ = partycache.New(env.Redis, env.Prefix, "acme").Get(t.Context(), number)
	assert.Equal(t, strconv.FormatInt(lead.ID, 10), cached.ID, "the cache names the second CRM's lead now")
}
