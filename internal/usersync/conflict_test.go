package usersync_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/usersync"
)

const sharedPhone = "+918586848544"

// User sync writes through the same rule as an admin: an email, phone or uuid of
// another agent's mapping is not taken. The sync goes on, and says so: unmatched with
// reason mapping_conflict for an agent left unmapped, a warning for one that keeps its
// older mapping.
func TestSyncRefusesConflicts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		existing   []mapping.Mapping
		mo         []directory.User
		crm        []directory.User
		phoneOwner string // the CRM user the shared phone resolves to after the sync
		unmatched  string // the agent reported unmatched with mapping_conflict, if any
		holder     string // the agent it names
		warning    string // a warning that must be there, if any
		untouched  []string
	}{
		{
			name:       "two agents share a phone",
			mo:         []directory.User{mo("a1", "asha@example.com", true, sharedPhone), mo("a2", "ravi@example.com", true, sharedPhone)},
			crm:        []directory.User{crmUser("101", "asha@example.com", true), crmUser("102", "ravi@example.com", true)},
			phoneOwner: "101", unmatched: "a2", holder: "a1",
		},
		{
			name: "a manual mapping has the phone",
			existing: []mapping.Mapping{func() mapping.Mapping {
				m := manual("a9", "109", mapping.StatusActive)
				m.Phones = []string{sharedPhone}
				return m
			}()},
			mo:         []directory.User{mo("a1", "asha@example.com", true, sharedPhone)},
			crm:        []directory.User{crmUser("101", "asha@example.com", true), crmUser("109", "x@example.com", true)},
			phoneOwner: "109", unmatched: "a1", holder: "a9", untouched: []string{"a9"},
		},
		{
			name: "an update would take another agent's phone",
			existing: []mapping.Mapping{
				func() mapping.Mapping {
					m := manual("a9", "109", mapping.StatusActive)
					m.Phones = []string{sharedPhone}
					return m
				}(),
				auto("a1", "101", "asha@example.com", mapping.StatusActive),
			},
			mo:         []directory.User{mo("a1", "asha@example.com", true, sharedPhone)},
			crm:        []directory.User{crmUser("101", "asha@example.com", true), crmUser("109", "x@example.com", true)},
			phoneOwner: "109", warning: "mapping of a1 not updated: its phone " + sharedPhone + " is already mapped to MyOperator user a9",
			untouched: []string{"a9", "a1"},
		},
		{
			name: "an agent leaving frees its phone for another in the same sync",
			existing: []mapping.Mapping{func() mapping.Mapping {
				m := auto("a1", "101", "asha@example.com", mapping.StatusActive)
				m.Phones = []string{sharedPhone}
				return m
			}()},
			mo:         []directory.User{mo("a1", "asha@example.com", false, sharedPhone), mo("a2", "ravi@example.com", true, sharedPhone)},
			crm:        []directory.User{crmUser("101", "asha@example.com", true), crmUser("102", "ravi@example.com", true)},
			phoneOwner: "102",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tenant.Sync{})
			for _, m := range tc.existing {
				require.NoError(t, f.store.Put(t.Context(), "acme", m))
			}
			before := map[string]*mapping.Mapping{}
			for _, m := range tc.existing {
				before[m.MyOperatorUserID] = f.mapping(t, m.MyOperatorUserID)
			}
			f.mo.set(tc.mo...)
			f.crm.set(tc.crm...)
			r := f.sync(t) // no error: a conflict does not fail the sync

			got, err := f.store.Resolve(t.Context(), "acme", callAgent("", "", sharedPhone))
			require.NoError(t, err)
			assert.Equal(t, tc.phoneOwner, got.CRMUserID, "the shared phone's owner")
			var conflicts []usersync.Unmatched
			for _, u := range r.Unmatched {
				if u.Reason == usersync.ReasonMappingConflict {
					conflicts = append(conflicts, u)
				}
			}
			if tc.unmatched == "" {
				assert.Empty(t, conflicts)
			} else {
				require.Len(t, conflicts, 1, "%+v", r.Unmatched)
				assert.Equal(t, tc.unmatched, conflicts[0].ID)
				assert.Equal(t, usersync.SideMyOperator, conflicts[0].Side)
				assert.Contains(t, conflicts[0].Detail, "phone "+sharedPhone+" is already mapped to MyOperator user "+tc.holder)
				_, err := f.store.Get(t.Context(), "acme", tc.unmatched)
				assert.ErrorIs(t, err, mapping.ErrNotFound, "the agent is not mapped")
				saved, err := f.svc.Report(t.Context(), "acme")
				require.NoError(t, err)
				assert.Contains(t, saved.Unmatched, conflicts[0], "the stored report says so too")
			}
			if tc.warning != "" {
				assert.Contains(t, strings.Join(r.Warnings, "\n"), tc.warning)
			}
			for _, id := range tc.untouched {
				assert.Equal(t, before[id], f.mapping(t, id), "%s's mapping untouched", id)
			}
		})
	}
}

// Approve reads the agent id from the path as every admin route does.
func TestApproveAgentIDInPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tenant.Sync{})
	m := auto("x y/../z?&a=b", "101", "", mapping.StatusPending)
	require.NoError(t, f.store.Put(t.Context(), "acme", m))
	st, body := f.apiCalls(http.MethodPost, "acme/mappings/"+url.PathEscape(m.MyOperatorUserID)+"/approve")
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.Equal(t, m.MyOperatorUserID, body["myoperator_user_id"])
	assert.Equal(t, "active", body["status"])

	st, body = f.apiCalls(http.MethodPost, "acme/mappings/"+url.PathEscape(strings.Repeat("a", 200))+"/approve")
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "invalid_agent_id", body["error"].(map[string]any)["code"])
}
