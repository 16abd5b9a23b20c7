package console

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/usermatch"
	"github.com/calltrack/calltrack/internal/usersync"
)

func TestRecordURL(t *testing.T) {
	zoho := func(accounts, org string) *tenant.Tenant {
		return &tenant.Tenant{CRM: tenant.CRM{Kind: "zoho", Zoho: tenant.Zoho{AccountsURL: accounts, OrgDomain: org}}}
	}
	for _, tc := range []struct {
		t    *tenant.Tenant
		want string
	}{
		{zoho("https://accounts.zoho.in", "org74822955"), "https://crm.zoho.in/crm/org74822955/tab/Calls/5725767000000411001"},
		{zoho("https://accounts.zohocloud.ca", "org110001007505"), "https://crm.zohocloud.ca/crm/org110001007505/tab/Calls/5725767000000411001"},
		{zoho("https://accounts.zoho.in", ""), ""},                                            // no org segment: no link that may not open
		{zoho("http://127.0.0.1:8080/sandbox/zoho", "org1"), ""},                              // not a Zoho data centre
		{&tenant.Tenant{CRM: tenant.CRM{Kind: "kylas", BaseURL: "https://api.kylas.io"}}, ""}, // no documented Kylas record URL
	} {
		assert.Equal(t, tc.want, RecordURL(tc.t, "5725767000000411001"))
		if tc.want == "" {
			assert.NotEmpty(t, recordNote(tc.t), "the console says why there is no link")
		}
	}
	assert.Empty(t, RecordURL(zoho("https://accounts.zoho.in", "org74822955"), ""))
}

var (
	callRowAttr = regexp.MustCompile(`<tr data-call="([^"]+)"`)
	nextLink    = regexp.MustCompile(`<a class="button" href="\?([^"]+)">Older calls`)
)

// Following the Calls page's "Older calls" links lists every call once, though more
// calls share a millisecond than a page holds (a reviewer's 150 afterCalls, 40 at a
// time, showed 139). A link of a millisecond alone, as the page made before, still
// lists the calls before it.
func TestCallsPagesListEveryCall(t *testing.T) {
	f := newFixture(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	var updates []trace.CallUpdate
	written, earlier := map[string]bool{}, map[string]bool{}
	for i := range 130 {
		at := t0 // 120 calls in one millisecond, 10 in the one before
		id := fmt.Sprintf("n2.1596270949.%d", i)
		if i >= 120 {
			at, earlier[id] = t0.Add(-time.Millisecond), true
		}
		st := trace.StatusReceived
		if i%2 == 0 {
			st, written[id] = trace.StatusWritten, true
		}
		updates = append(updates, trace.CallUpdate{Tenant: "acme", CallID: id, Update: trace.Update{Stage: trace.Stage{Stage: st, At: at, Kind: "log"}, Status: st}})
	}
	require.NoError(t, f.tr.RecordAll(t.Context(), updates))
	c := f.client()
	f.signIn(c, "op-token")

	// pages follows the Older-calls links from query, and returns each call listed.
	pages := func(query string) map[string]int {
		seen := map[string]int{}
		for n := 0; ; n++ {
			require.Less(t, n, 10, "the pages end")
			res, page := f.get(c, "/console/tenants/acme/calls?"+query)
			require.Equal(t, http.StatusOK, res.StatusCode)
			for _, m := range callRowAttr.FindAllStringSubmatch(page, -1) {
				seen[m[1]]++
			}
			next := nextLink.FindStringSubmatch(page)
			if next == nil {
				return seen
			}
			query = html.UnescapeString(next[1])
		}
	}
	for _, tc := range []struct {
		query string
		want  func(id string) bool
	}{
		{"", func(string) bool { return true }},
		{"status=written", func(id string) bool { return written[id] }},
		{"before=" + strconv.FormatInt(t0.UnixMilli(), 10), func(id string) bool { return earlier[id] }},
	} {
		seen := pages(tc.query)
		want := 0
		for _, u := range updates {
			if tc.want(u.CallID) {
				want++
				assert.Equal(t, 1, seen[u.CallID], "%q: call %s listed once", tc.query, u.CallID)
			}
		}
		assert.Len(t, seen, want, "%q: only the calls asked for", tc.query)
	}
}

// A call parked as an afterCall (agent by MyOperator user id) and then as its Webhook v2
// summary (by uuid) shows the latest event's agent, the uuid; the console still asks to
// map the agent by its user id — what mappings are keyed by and afterCalls name — with
// the uuid, on the call's page, in the calls list and on the Agents page, and the
// filled map form stores both: the agent's calls of either webhook are attributed.
// A call only one webhook named offers the id it has, as before.
func TestUnattributedCallOffersBothAgentIDs(t *testing.T) {
	const (
		userID = "5cd40f6556f2f124"
		uuid   = "9e1b7d3c-4a2f-4c61-8f0e-2b7a5d1c9e44"
		other  = "5cd40f6556f2f200"
		v2Only = "0b5e2c1a-9d3f-4e7a-a1c2-7f6e5d4c3b2a"
	)
	f := newFixture(t)
	f.api.CRMUsers = func(*tenant.Tenant) (directory.Source, error) {
		return consoleCRM{{ID: "1001", Name: "Sumit Arya", Active: true}}, nil
	}
	ctx := t.Context()
	// As ingest and the writer record them (callwriter's park).
	record := func(callID string, us ...trace.Update) {
		for _, u := range us {
			require.NoError(t, f.tr.Record(ctx, "acme", callID, u))
		}
	}
	received := func(agent string) trace.Update {
		return trace.Update{Stage: trace.Stage{Stage: trace.StatusReceived, Kind: trace.KindLog}, Status: trace.StatusReceived, Agent: agent}
	}
	parked := func(agent string, v2 bool) trace.Update {
		u := trace.Update{Stage: trace.Stage{Stage: trace.StatusUnattributed, Kind: trace.KindLog}, Status: trace.StatusUnattributed,
			Attributed: &call.Agent{ID: agent}}
		if v2 {
			u.ParkedUUID = agent
		} else {
			u.ParkedUserID = agent
		}
		return u
	}
	record("both", received(userID), parked(userID, false), received(uuid), parked(uuid, true))
	record("v1-only", received(other), parked(other, false))
	record("v2-only", received(v2Only), parked(v2Only, true))

	c := f.client()
	_, csrf := f.signIn(c, "op-token")
	_, page := f.get(c, "/console/tenants/acme/calls/both")
	page = html.UnescapeString(page)
	assert.Contains(t, page, `MyOperator agent <strong class="mono">`+userID+`</strong> (uuid <span class="mono">`+uuid+`</span> in Webhook v2) has no mapping`)
	assert.Contains(t, page, `href="/console/tenants/acme/agents?agent=`+userID+`&uuid=`+uuid+`#map">Map agent `+userID+`</a>`)

	for callID, want := range map[string]string{"v1-only": "agent=" + other, "v2-only": "agent=" + v2Only} {
		_, page := f.get(c, "/console/tenants/acme/calls/"+callID)
		page = html.UnescapeString(page)
		assert.Contains(t, page, `href="/console/tenants/acme/agents?`+want+`#map"`, callID)
		assert.NotContains(t, page, "in Webhook v2", callID)
	}

	_, page = f.get(c, "/console/tenants/acme/calls")
	assert.Contains(t, html.UnescapeString(page), `href="/console/tenants/acme/agents?agent=`+userID+`&uuid=`+uuid+`#map">map the agent</a>`, "the calls list")

	_, page = f.get(c, "/console/tenants/acme/agents?agent="+userID+"&uuid="+uuid)
	assert.Contains(t, page, `name="agent" list="known-agents" value="`+userID+`"`, "the map form's user id")
	assert.Contains(t, page, `id="uuid" name="uuid" value="`+uuid+`"`, "the map form's uuid")
	assert.Contains(t, page, `<tr data-agent="`+userID+`">`, "the agent waiting for a mapping, by its user id")
	assert.NotContains(t, page, `<tr data-agent="`+uuid+`">`)

	res, _ := f.post(c, "/console/tenants/acme/agents/map", url.Values{"csrf": {csrf}, "agent": {userID}, "uuid": {uuid}, "crm_user": {"1001"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	m, err := f.ms.Get(ctx, "acme", userID)
	require.NoError(t, err)
	assert.Equal(t, uuid, m.MyOperatorUUID, "the mapping has both ids")
	_, page = f.get(c, "/console/tenants/acme/calls/both")
	assert.Contains(t, page, "The agent is mapped now")
	assert.NotContains(t, page, "Map agent ")
}

// An agent user sync lists as unmatched, whose call was parked under both webhooks:
// its row's Map button carries the uuid too (user sync lists every MyOperator user, so
// this is the usual way to it). A refused map form comes back as it was typed, the
// uuid, email and phones with it.
func TestUnmatchedAgentMapKeepsTheUUID(t *testing.T) {
	const (
		userID = "5cd40f6556f2f124"
		uuid   = "9e1b7d3c-4a2f-4c61-8f0e-2b7a5d1c9e44"
	)
	f := newFixture(t)
	f.api.CRMUsers = func(*tenant.Tenant) (directory.Source, error) {
		return consoleCRM{{ID: "1001", Name: "Sumit Arya", Active: true}}, nil
	}
	ctx := t.Context()
	now := time.Now().UTC()
	report, err := json.Marshal(usersync.Report{Tenant: "acme", LastSyncAt: &now, Match: "email",
		Unmatched: []usermatch.Unmatched{{Side: usermatch.SideMyOperator, ID: userID, Email: "ravi@example.com", Name: "Ravi", Reason: "no_counterpart"}}})
	require.NoError(t, err)
	require.NoError(t, f.c.Redis.Set(ctx, f.c.Prefix+":sync:{acme}:report", report, 0).Err()) // as usersync saves it
	for _, u := range []trace.Update{
		{Stage: trace.Stage{Stage: trace.StatusUnattributed, Kind: trace.KindLog}, Status: trace.StatusUnattributed, Agent: userID, ParkedUserID: userID},
		{Stage: trace.Stage{Stage: trace.StatusUnattributed, Kind: trace.KindLog}, Status: trace.StatusUnattributed, Agent: uuid, ParkedUUID: uuid},
	} {
		require.NoError(t, f.tr.Record(ctx, "acme", "both", u))
	}
	c := f.client()
	_, csrf := f.signIn(c, "op-token")
	_, page := f.get(c, "/console/tenants/acme/agents")
	page = html.UnescapeString(page)
	require.Contains(t, page, `<tr data-agent="`+userID+`">`, "the sync's unmatched agent")
	assert.Contains(t, page, "uuid="+uuid, "its Map button carries the uuid")

	form := url.Values{"csrf": {csrf}, "agent": {userID}, "uuid": {uuid}, "email": {"ravi@example.com"}, "phone": {"+919811122233"}, "crm_user": {"-5"}}
	res, _ := f.post(c, "/console/tenants/acme/agents/map", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, page = f.get(c, res.Header.Get("Location"))
	page = html.UnescapeString(page)
	assert.Contains(t, page, "The agent was not mapped")
	for field, want := range map[string]string{"agent": userID, "uuid": uuid, "email": "ravi@example.com", "phone": "+919811122233"} {
		assert.Regexp(t, `name="`+field+`"[^>]*value="`+regexp.QuoteMeta(want)+`"`, page, "the refused form keeps its %s", field)
	}
}
