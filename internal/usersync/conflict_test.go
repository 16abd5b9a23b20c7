package usersync_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/usermatch"
	"github.com/calltrack/calltrack/internal/usermatch/usermatchtest"
)

const sharedPhone = "+918586848544"

// withPhones is m listing phones.
func withPhones(m call.Mapping, phones ...string) call.Mapping {
	m.Phones = phones
	return m
}

// User sync mirrors the directories: an agent's mapping is stored (owner, status, its
// other values) even when one of its values is another agent's mapping's; that value
// stays with the other agent, and a warning says so. Nobody is left unmatched for it,
// and values moving between agents in one sync (a swap) end where MyOperator has them.
func TestSyncLeavesConflictingValues(t *testing.T) {
	t.Parallel()
	const otherPhone = "+919711636496"
	cases := []struct {
		name      string
		existing  []call.Mapping
		filled    []call.Mapping // written by Fill after existing (a value left to another agent)
		mo        []directory.User
		crm       []directory.User
		phones    map[string]string // phone → the CRM user it resolves to after the sync
		mapped    map[string]string // agent → the CRM user of its mapping after the sync
		status    map[string]string // agent → its mapping's status, where checked
		warning   string            // a warning that must be there, if any
		untouched []string
	}{
		{
			name:    "two agents share a phone (an office line)",
			mo:      []directory.User{usermatchtest.Agent("a1", "asha@example.com", true, sharedPhone), usermatchtest.Agent("a2", "ravi@example.com", true, sharedPhone)},
			crm:     []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("102", "ravi@example.com", true)},
			phones:  map[string]string{sharedPhone: "101"},
			mapped:  map[string]string{"a1": "101", "a2": "102"},
			warning: "phone " + sharedPhone + " of a2 stays with MyOperator user a1",
		},
		{
			name:      "a manual mapping has the phone",
			existing:  []call.Mapping{withPhones(usermatchtest.Manual("a9", "109", call.MappingActive), sharedPhone)},
			mo:        []directory.User{usermatchtest.Agent("a1", "asha@example.com", true, sharedPhone, otherPhone)},
			crm:       []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("109", "x@example.com", true)},
			phones:    map[string]string{sharedPhone: "109", otherPhone: "101"},
			mapped:    map[string]string{"a1": "101"},
			warning:   "phone " + sharedPhone + " of a1 stays with MyOperator user a9",
			untouched: []string{"a9"},
		},
		{
			name: "an update would take another agent's phone",
			existing: []call.Mapping{
				withPhones(usermatchtest.Manual("a9", "109", call.MappingActive), sharedPhone),
				usermatchtest.Auto("a1", "101", "asha@example.com", call.MappingActive),
			},
			mo:        []directory.User{usermatchtest.Agent("a1", "asha@example.com", true, sharedPhone)},
			crm:       []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("109", "x@example.com", true)},
			phones:    map[string]string{sharedPhone: "109"},
			mapped:    map[string]string{"a1": "101"},
			warning:   "phone " + sharedPhone + " of a1 stays with MyOperator user a9",
			untouched: []string{"a9"},
		},
		{
			name: "an owner change with a phone another agent has",
			existing: []call.Mapping{
				withPhones(usermatchtest.Manual("a9", "109", call.MappingActive), sharedPhone),
				usermatchtest.Auto("a1", "101", "asha@example.com", call.MappingActive),
			},
			mo:        []directory.User{usermatchtest.Agent("a1", "ravi@example.com", true, sharedPhone)},
			crm:       []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("102", "ravi@example.com", true), usermatchtest.CRMUser("109", "x@example.com", true)},
			phones:    map[string]string{sharedPhone: "109"},
			mapped:    map[string]string{"a1": "102"},
			warning:   "phone " + sharedPhone + " of a1 stays with MyOperator user a9",
			untouched: []string{"a9"},
		},
		{
			name: "two agents swap phones",
			existing: []call.Mapping{
				withPhones(usermatchtest.Auto("a1", "101", "asha@example.com", call.MappingActive), sharedPhone),
				withPhones(usermatchtest.Auto("a2", "102", "ravi@example.com", call.MappingActive), otherPhone),
			},
			mo:     []directory.User{usermatchtest.Agent("a1", "asha@example.com", true, otherPhone), usermatchtest.Agent("a2", "ravi@example.com", true, sharedPhone)},
			crm:    []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("102", "ravi@example.com", true)},
			phones: map[string]string{sharedPhone: "102", otherPhone: "101"},
			mapped: map[string]string{"a1": "101", "a2": "102"},
		},
		{
			name: "an agent leaving frees its phone for another in the same sync",
			existing: []call.Mapping{
				withPhones(usermatchtest.Auto("a1", "101", "asha@example.com", call.MappingActive), sharedPhone),
			},
			mo:     []directory.User{usermatchtest.Agent("a1", "asha@example.com", false, sharedPhone), usermatchtest.Agent("a2", "ravi@example.com", true, sharedPhone)},
			crm:    []directory.User{usermatchtest.CRMUser("101", "asha@example.com", true), usermatchtest.CRMUser("102", "ravi@example.com", true)},
			phones: map[string]string{sharedPhone: "102"},
			mapped: map[string]string{"a2": "102"},
		},
		{
			name:     "a manual mapping listing a phone another agent holds is suspended",
			existing: []call.Mapping{withPhones(usermatchtest.Manual("a2", "102", call.MappingActive), sharedPhone)},
			filled:   []call.Mapping{withPhones(usermatchtest.Manual("a1", "101", call.MappingActive), sharedPhone)},
			mo:       []directory.User{usermatchtest.Agent("a5", "meena@example.com", true)},
			crm:      []directory.User{usermatchtest.CRMUser("101", "asha@example.com", false), usermatchtest.CRMUser("102", "ravi@example.com", true)},
			phones:   map[string]string{sharedPhone: "102"},
			mapped:   map[string]string{"a1": "101", "a2": "102"},
			status:   map[string]string{"a1": call.MappingSuspended},
			warning:  "phone " + sharedPhone + " of a1 stays with MyOperator user a2",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tenant.Sync{})
			ctx := t.Context()
			for _, m := range tc.existing {
				require.NoError(t, f.store.Put(ctx, "acme", m))
			}
			_, err := f.store.Fill(ctx, "acme", tc.filled)
			require.NoError(t, err)
			before := map[string]*call.Mapping{}
			for _, m := range tc.existing {
				before[m.MyOperatorUserID] = f.mapping(t, m.MyOperatorUserID)
			}
			f.mo.set(tc.mo...)
			f.crm.set(tc.crm...)
			r := f.sync(t) // no error: a shared value does not fail the sync

			for ph, want := range tc.phones {
				got, err := f.store.Resolve(ctx, "acme", callAgent("", "", ph))
				require.NoError(t, err, ph)
				assert.Equal(t, want, got.CRMUserID, "the owner of %s", ph)
			}
			for agent, want := range tc.mapped {
				m := f.mapping(t, agent)
				require.NotNil(t, m, "%s is mapped", agent)
				assert.Equal(t, want, m.CRMUserID, "%s's owner", agent)
				if st, ok := tc.status[agent]; ok {
					assert.Equal(t, st, m.Status, "%s's status", agent)
				}
			}
			for _, u := range r.Unmatched {
				assert.NotEqual(t, usermatch.ReasonMappingConflict, u.Reason, "%+v", u)
			}
			warnings := strings.Join(r.Warnings, "\n")
			if tc.warning != "" {
				assert.Contains(t, warnings, tc.warning)
			} else {
				assert.NotContains(t, warnings, "stays with", "no value left to another agent")
			}
			for _, id := range tc.untouched {
				assert.Equal(t, before[id], f.mapping(t, id), "%s's mapping untouched", id)
			}
			again := f.sync(t)
			assert.Empty(t, again.Changes, "a second sync changes nothing")
		})
	}
}

// Approve reads the agent id from the path as every admin route does.
func TestApproveAgentIDInPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{})
	m := usermatchtest.Auto("x y/../z?&a=b", "101", "", call.MappingPending)
	require.NoError(t, f.store.Put(t.Context(), "acme", m))
	st, body := f.apiCalls(http.MethodPost, "acme/mappings/"+url.PathEscape(m.MyOperatorUserID)+"/approve")
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, m.MyOperatorUserID, body["myoperator_user_id"])
	assert.Equal(t, "active", body["status"])

	st, body = f.apiCalls(http.MethodPost, "acme/mappings/"+url.PathEscape(strings.Repeat("a", 200))+"/approve")
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "invalid_agent_id", body["error"].(map[string]any)["code"])
}
