package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// ErrNoCRMUsers means the API was given no way to list a tenant's CRM users.
var ErrNoCRMUsers = errors.New("calltrack cannot list this CRM's users")

// crmUserTimeout bounds the check of a mapping's CRM user: a CRM that does not answer
// must not hold the admin up (the mapping is then stored with a warning).
const crmUserTimeout = 10 * time.Second

// ListCRMUsers lists a tenant's CRM users (kept in UserCache a while).
func (a *API) ListCRMUsers(ctx context.Context, t *tenant.Tenant) ([]directory.User, error) {
	if a.CRMUsers == nil {
		return nil, ErrNoCRMUsers
	}
	src, err := a.CRMUsers(t)
	if err != nil {
		return nil, err
	}
	return a.UserCache.Users(ctx, t.ID, src)
}

// ForgetCRMUsers drops the tenant's CRM users kept: the next listing asks the CRM.
func (a *API) ForgetCRMUsers(tenantID string) { a.UserCache.Forget(tenantID) }

// checkCRMUser makes sure a mapping's CRM user is one of the tenant's CRM users: a
// mapping to one that is not (a typo, another CRM's id) attributes calls the CRM then
// refuses, and they dead-letter. A *web.Error 422 unknown_crm_user when it is not.
// When the CRM cannot say (no users API, an outage, a timeout), the admin is not
// blocked — the mapping is what gets their calls written — and the answer is a warning
// to show with the stored mapping instead; so is a deactivated CRM user (the admin may
// be about to reactivate it; user sync suspends the mapping until then).
func (a *API) checkCRMUser(ctx context.Context, t *tenant.Tenant, id string) (string, error) {
	if a.CRMUsers == nil || t == nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, crmUserTimeout)
	defer cancel()
	find := func() (*directory.User, error) {
		users, err := a.ListCRMUsers(ctx, t)
		if err != nil {
			return nil, err
		}
		for i := range users {
			if users[i].ID == id {
				return &users[i], nil
			}
		}
		return nil, nil
	}
	u, err := find()
	if err == nil && u == nil && a.UserCache != nil {
		// Not among the users kept: it may have been created in the CRM since they were
		// listed. Ask the CRM before refusing (a refusal is rare: a mistyped id).
		a.ForgetCRMUsers(t.ID)
		u, err = find()
	}
	switch {
	case err != nil:
		a.Log.Warn().Err(err).Str("tenant", t.ID).Str("crm_user_id", id).Msg("mapping's CRM user not checked")
		return fmt.Sprintf("CRM user %s was not checked: the CRM's users could not be listed (%v). The mapping is stored; "+
			"if the id is wrong the agent's calls dead-letter, so check it once the CRM answers (GET .../crm/users)", id, err), nil
	case u == nil:
		return "", web.Errorf(http.StatusUnprocessableEntity, "unknown_crm_user",
			fmt.Sprintf("CRM user %s is not one of the tenant's users in %s (GET /admin/v1/tenants/%s/crm/users lists them)", id, t.CRM.Name(), t.ID))
	case !u.Active:
		return fmt.Sprintf("CRM user %s (%s) is deactivated in the CRM: the CRM may refuse calls under them, and user sync (where it runs) suspends this mapping until the user is active again", id, u.Name), nil
	}
	return "", nil
}
