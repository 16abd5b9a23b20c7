package console

import (
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
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
