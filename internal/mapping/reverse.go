package mapping

import (
	"context"
	"strings"

	"github.com/calltrack/calltrack/internal/call"
)

// ByCRMUser returns the mappings (any status) whose CRM user is crmUserID: the reverse
// of Resolve, for click-to-call (which agent's phone to ring when a CRM user clicks a
// number). It reads the tenant's mapping hash: clicks are rare next to webhooks, and
// a tenant's agents number in the hundreds, so no index of its own is kept.
func (s *Store) ByCRMUser(ctx context.Context, tenant, crmUserID string) ([]call.Mapping, error) {
	all, err := s.List(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var out []call.Mapping
	for _, m := range all {
		if strings.TrimSpace(crmUserID) != "" && m.CRMUserID == crmUserID {
			out = append(out, m)
		}
	}
	return out, nil
}
