package usersync_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/usermatch/usermatchtest"
	"github.com/calltrack/calltrack/internal/usersync"
	"github.com/calltrack/calltrack/internal/web"
)

// dir is a directory whose users a test sets; it counts concurrent listings.
type dir struct {
	mu      sync.Mutex
	users   []directory.User
	err     error
	active  atomic.Int32
	maxSeen atomic.Int32
	calls   atomic.Int32
	hold    time.Duration
}

func (d *dir) set(us ...directory.User) {
	d.mu.Lock()
	d.users = us
	d.mu.Unlock()
}

func (d *dir) Users(ctx context.Context) ([]directory.User, error) {
	n := d.active.Add(1)
	defer d.active.Add(-1)
	for {
		m := d.maxSeen.Load()
		if n <= m || d.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	d.calls.Add(1)
	if d.hold > 0 {
		time.Sleep(d.hold) // simulates a slow API, so overlapping syncs would show
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]directory.User(nil), d.users...), d.err
}

// journal records what the store journals.
type journal struct {
	mu      sync.Mutex
	changes []mapping.Change
	hook    func(mapping.Change)
}

func (j *journal) Record(_ context.Context, c mapping.Change) error {
	j.mu.Lock()
	j.changes = append(j.changes, c)
	hook := j.hook
	j.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	return nil
}

type fixture struct {
	svc      *usersync.Service
	store    *mapping.Store
	mo, crm  *dir
	journal  *journal
	tenant   *tenant.Tenant
	redis    redis.UniversalClient
	api      *httptest.Server
	apiCalls func(method, path string) (int, map[string]any)
}

func newFixture(t *testing.T, s tenant.Sync) *fixture {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	f := &fixture{mo: &dir{}, crm: &dir{}, journal: &journal{}, redis: rdb,
		tenant: &tenant.Tenant{ID: "acme", Sync: s, MyOperatorKey: "k"}}
	f.store = mapping.NewStore(rdb, "t").WithJournal(f.journal)
	f.svc = &usersync.Service{Tenants: tenant.NewRegistry(f.tenant, &tenant.Tenant{ID: "off"}), Mappings: f.store, Redis: rdb, Prefix: "t",
		Log: zerolog.Nop(), Now: func() time.Time { return usermatchtest.T0 },
		Sources: func(t *tenant.Tenant) (directory.Source, directory.Source, error) {
			if t.MyOperatorKey == "" {
				return nil, nil, usersync.ErrNotConfigured
			}
			return f.mo, f.crm, nil
		}}
	e := web.New(zerolog.Nop(), metrics.New(), nil)
	(&usersync.API{Service: f.svc, Wait: 200 * time.Millisecond}).Register(e.Group("/admin/v1"))
	f.api = httptest.NewServer(e)
	t.Cleanup(f.api.Close)
	f.apiCalls = func(method, path string) (int, map[string]any) {
		req, _ := http.NewRequest(method, f.api.URL+"/admin/v1/tenants/"+path, nil)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		out := map[string]any{}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
		return res.StatusCode, out
	}
	return f
}

func (f *fixture) sync(t *testing.T) *usersync.Report {
	t.Helper()
	r, err := f.svc.Sync(t.Context(), "acme", usersync.Options{})
	require.NoError(t, err)
	return r
}

func (f *fixture) mapping(t *testing.T, agent string) *call.Mapping {
	t.Helper()
	m, err := f.store.Get(t.Context(), "acme", agent)
	if errors.Is(err, mapping.ErrNotFound) {
		return nil
	}
	require.NoError(t, err)
	return m
}

// User sync's mappings are not held to the form of the CRM's user ids that an admin's
// are (call.ValidateCRMUserID): their ids come from the CRM's own users API, and
// refusing one would leave the agent's calls unattributed.
func TestSyncTakesCRMUserIDsAsTheCRMGivesThem(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{})
	f.tenant.CRM.Kind = call.CRMZoho
	f.mo.set(usermatchtest.Agent("a1", "asha@example.com", true))
	f.crm.set(usermatchtest.CRMUser("zuid-101", "asha@example.com", true))
	r := f.sync(t)
	require.Len(t, r.Matched, 1)
	m := f.mapping(t, "a1")
	require.NotNil(t, m)
	assert.Equal(t, "zuid-101", m.CRMUserID)
	assert.Equal(t, call.MappingActive, m.Status)
}

func TestSyncLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{})
	f.mo.set(usermatchtest.Agent("a1", "asha@example.com", true, "+918586848544"), usermatchtest.Agent("a2", "ravi@example.com", true), usermatchtest.Agent("a3", "meena@example.com", true))
	f.crm.set(usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("102", "ravi@example.com", true), usermatchtest.CRMUser("555", "lead@example.com", true))

	r := f.sync(t)
	assert.Equal(t, []usersync.Matched{
		{MyOperatorUserID: "a1", CRMUserID: "101", Email: "asha@example.com", Source: "email-match", Status: "active", Name: "CRM 101"},
		{MyOperatorUserID: "a2", CRMUserID: "102", Email: "ravi@example.com", Source: "email-match", Status: "active", Name: "CRM 102"},
	}, r.Matched)
	assert.Len(t, r.Changes, 2)
	assert.Equal(t, usersync.UserCounts{MyOperator: 3, CRM: 3}, r.Users)
	m, err := f.store.Resolve(t.Context(), "acme", callAgent("", "", "+918586848544"))
	require.NoError(t, err, "an inCall agent (phone only) resolves through the synced mapping")
	assert.Equal(t, "101", m.CRMUserID)

	// An admin maps a3 by hand; the next sync keeps it and matches nothing new.
	require.NoError(t, f.store.Put(t.Context(), "acme", usermatchtest.Manual("a3", "555", call.MappingActive)))
	r = f.sync(t)
	assert.Empty(t, r.Changes, "a resync with nothing new changes nothing")
	assert.Equal(t, call.MappingManual, f.mapping(t, "a3").Source)
	assert.Empty(t, r.Unmatched, "the manual mapping accounts for a3 and CRM user 555")

	// The CRM deactivates 101 and 555; MyOperator deletes a2.
	f.crm.set(usermatchtest.CRMUser("101", "asha@example.com", false), usermatchtest.CRMUser("102", "ravi@example.com", true), usermatchtest.CRMUser("555", "lead@example.com", false))
	f.mo.set(usermatchtest.Agent("a1", "asha@example.com", true), usermatchtest.Agent("a3", "meena@example.com", true))
	r = f.sync(t)
	assert.Nil(t, f.mapping(t, "a1"), "deactivated in the CRM: automatic mapping removed")
	assert.Nil(t, f.mapping(t, "a2"), "deleted in MyOperator: automatic mapping removed")
	assert.Equal(t, call.MappingSuspended, f.mapping(t, "a3").Status, "manual mapping of a deactivated CRM user is suspended")
	_, err = f.store.Resolve(t.Context(), "acme", callAgent("a3", "", ""))
	assert.ErrorIs(t, err, mapping.ErrNotFound, "a suspended mapping attributes nothing")
	kinds := map[string]string{}
	for _, c := range r.Changes {
		kinds[c.MyOperatorUserID] = c.Change
	}
	assert.Equal(t, map[string]string{"a1": "removed", "a2": "removed", "a3": "suspended"}, kinds)
	assert.Contains(t, r.Matched, usersync.Matched{MyOperatorUserID: "a3", CRMUserID: "555", Source: "manual", Status: "suspended"})

	// 555 comes back: the manual mapping resumes.
	f.crm.set(usermatchtest.CRMUser("101", "asha@example.com", false), usermatchtest.CRMUser("555", "lead@example.com", true))
	f.sync(t)
	assert.Equal(t, call.MappingActive, f.mapping(t, "a3").Status)

	// Deleting the manual mapping returns the agent to automatic matching.
	require.NoError(t, f.store.DeleteBy(t.Context(), "acme", "a3", "admin-api"))
	f.crm.set(usermatchtest.CRMUser("555", "meena@example.com", true))
	f.sync(t)
	assert.Equal(t, call.MappingEmailMatch, f.mapping(t, "a3").Source)

	// Every change went to the journal first, with who made it.
	actors := map[string]int{}
	for _, c := range f.journal.changes {
		actors[c.Actor]++
	}
	assert.Equal(t, map[string]int{"sync": 7, "admin-api": 2}, actors)
}

func TestSyncApproval(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{RequireApproval: true})
	f.mo.set(usermatchtest.Agent("a1", "asha@example.com", true))
	f.crm.set(usermatchtest.CRMUser("101", "asha@example.com", true))
	r := f.sync(t)
	require.Len(t, r.Matched, 1)
	assert.Equal(t, "pending", r.Matched[0].Status)
	_, err := f.store.Resolve(t.Context(), "acme", callAgent("a1", "", ""))
	assert.ErrorIs(t, err, mapping.ErrNotFound, "pending attributes nothing")

	st, body := f.apiCalls(http.MethodPost, "acme/mappings/a1/approve")
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "active", body["status"])
	assert.Equal(t, "admin-api", body["updated_by"])
	st, _ = f.apiCalls(http.MethodPost, "acme/mappings/a1/approve")
	assert.Equal(t, http.StatusOK, st, "approving twice is fine")
	st, body = f.apiCalls(http.MethodPost, "acme/mappings/nobody/approve")
	assert.Equal(t, http.StatusNotFound, st)
	assert.Equal(t, "not_found", body["error"].(map[string]any)["code"])

	// The approved mapping stays active on resync; the report shows it so.
	r = f.sync(t)
	assert.Empty(t, r.Changes)
	assert.Equal(t, "active", r.Matched[0].Status)

	require.NoError(t, f.store.Put(t.Context(), "acme", usermatchtest.Manual("a9", "900", call.MappingSuspended)))
	st, body = f.apiCalls(http.MethodPost, "acme/mappings/a9/approve")
	assert.Equal(t, http.StatusConflict, st)
	assert.Equal(t, "not_pending", body["error"].(map[string]any)["code"])
}

func TestSyncReportAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{})
	st, body := f.apiCalls(http.MethodGet, "acme/sync/report")
	assert.Equal(t, http.StatusNotFound, st)
	assert.Contains(t, body["error"].(map[string]any)["message"], "no user sync has run")

	f.mo.set(usermatchtest.Agent("a1", "asha@example.com", true), usermatchtest.Agent("a2", "Priya@Example.com", true))
	f.crm.set(usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("102", "priya@example.com", true))
	st, body = f.apiCalls(http.MethodPost, "acme/sync")
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, "2026-11-20T10:00:00Z", body["last_sync_at"])
	assert.Len(t, body["matched"], 1)
	assert.Len(t, body["unmatched"], 2)

	st, got := f.apiCalls(http.MethodGet, "acme/sync/report")
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, body["unmatched"], got["unmatched"])

	// An agent mapped by hand since leaves the unmatched list of the report.
	require.NoError(t, f.store.Put(t.Context(), "acme", usermatchtest.Manual("a2", "102", call.MappingActive)))
	_, got = f.apiCalls(http.MethodGet, "acme/sync/report")
	assert.Empty(t, got["unmatched"])
	assert.Len(t, got["matched"], 2)

	// A failing users API: 502 with the cause; the last good report is kept, with the error.
	f.crm.err = errors.New("kylas: list users: HTTP 503")
	st, body = f.apiCalls(http.MethodPost, "acme/sync")
	assert.Equal(t, http.StatusBadGateway, st)
	assert.Contains(t, body["error"].(map[string]any)["message"], "HTTP 503")
	_, got = f.apiCalls(http.MethodGet, "acme/sync/report")
	assert.Equal(t, "2026-11-20T10:00:00Z", got["last_sync_at"])
	assert.Contains(t, got["last_error"].(map[string]any)["message"], "HTTP 503")
	assert.NotNil(t, f.mapping(t, "a1"), "a failed sync changes nothing")

	st, body = f.apiCalls(http.MethodPost, "off/sync")
	assert.Equal(t, http.StatusConflict, st)
	assert.Equal(t, "sync_not_configured", body["error"].(map[string]any)["code"])
}

// One sync per tenant at a time: a second waits, or is refused.
func TestSyncOneAtATime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{})
	f.mo.set(usermatchtest.Agent("a1", "asha@example.com", true))
	f.crm.set(usermatchtest.CRMUser("101", "asha@example.com", true))
	f.mo.hold = 300 * time.Millisecond
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.Sync(context.Background(), "acme", usersync.Options{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	var ok, busy int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, usersync.ErrBusy):
			busy++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	assert.Equal(t, 1, ok, "one ran")
	assert.Equal(t, 3, busy, "the others were told one is running")
	assert.EqualValues(t, 1, f.mo.maxSeen.Load())

	// With a wait, the second runs after the first.
	f.mo.hold = 100 * time.Millisecond
	var ran atomic.Int32
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.svc.Sync(context.Background(), "acme", usersync.Options{Wait: 5 * time.Second}); err == nil {
				ran.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 2, ran.Load())
	assert.EqualValues(t, 1, f.mo.maxSeen.Load(), "never two at once")
}

// An admin's change made while a sync runs wins over the sync's plan.
func TestSyncYieldsToConcurrentAdminChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{})
	f.mo.set(usermatchtest.Agent("a1", "asha@example.com", true), usermatchtest.Agent("a2", "ravi@example.com", true))
	f.crm.set(usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("102", "ravi@example.com", true))
	var once sync.Once
	f.journal.hook = func(c mapping.Change) {
		if c.UserID == "a1" && c.Actor == "sync" {
			once.Do(func() {
				// Between the sync's plan and its change of a2, an admin maps a2 by hand.
				require.NoError(t, f.store.Put(context.Background(), "acme", usermatchtest.Manual("a2", "777", call.MappingActive)))
			})
		}
	}
	r := f.sync(t)
	assert.Equal(t, "777", f.mapping(t, "a2").CRMUserID)
	assert.Equal(t, call.MappingManual, f.mapping(t, "a2").Source)
	require.Len(t, r.Warnings, 1)
	assert.Contains(t, r.Warnings[0], "a2 changed during the sync")
}

// Replicas each run a scheduler: syncs happen periodically, never two at once.
func TestSchedulerReplicas(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{})
	f.mo.set(usermatchtest.Agent("a1", "asha@example.com", true))
	f.crm.set(usermatchtest.CRMUser("101", "asha@example.com", true))
	f.mo.hold = 20 * time.Millisecond
	f.svc.Now = nil // real time: the scheduler skips a tenant synced moments ago
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = (&usersync.Scheduler{Service: f.svc, Interval: 100 * time.Millisecond}).Run(ctx)
		}()
	}
	testenv.Eventually(t, 5*time.Second, "several scheduled syncs", func() bool { return f.mo.calls.Load() >= 4 })
	cancel()
	wg.Wait()
	assert.EqualValues(t, 1, f.mo.maxSeen.Load(), "one sync of a tenant at a time across replicas")
	assert.NotNil(t, f.mapping(t, "a1"))
	assert.True(t, strings.HasPrefix(f.mapping(t, "a1").UpdatedBy, "sync"))
}
