// Package usermatchtest builds the users and mappings that user sync's tests (the
// matching's and the sync service's) start from.
package usermatchtest

import (
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/usermatch"
)

// T0 is the tests' now.
var T0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// Agent is a MyOperator user.
func Agent(id, email string, active bool, phones ...string) directory.User {
	return directory.User{ID: id, Name: "Agent " + id, Email: email, Active: active, Phones: phones}
}

// CRMUser is a CRM user.
func CRMUser(id, email string, active bool) directory.User {
	return directory.User{ID: id, Name: "CRM " + id, Email: email, Active: active}
}

// Auto is a mapping an earlier sync made by email, an hour before T0.
func Auto(agent, crmID, email string, status string) call.Mapping {
	return call.Mapping{MyOperatorUserID: agent, CRMUserID: crmID, Email: email, Name: "CRM " + crmID,
		Source: call.MappingEmailMatch, Status: status, UpdatedAt: T0.Add(-time.Hour), UpdatedBy: usermatch.Actor}
}

// Manual is a mapping an admin made, an hour before T0.
func Manual(agent, crmID string, status string) call.Mapping {
	return call.Mapping{MyOperatorUserID: agent, CRMUserID: crmID, Source: call.MappingManual, Status: status,
		UpdatedAt: T0.Add(-time.Hour), UpdatedBy: "admin-api"}
}
