package schemas_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/usermatch"
	"github.com/calltrack/calltrack/internal/usersync"
)

// The sync report the code produces matches the OpenAPI's SyncReport.
func TestOpenAPISyncReport(t *testing.T) {
	sch := openapiSchema(t, "/components/schemas/SyncReport")
	now := time.Now().UTC()
	p := usermatch.Match(usermatch.Input{Now: now,
		MyOperator: []directory.User{{ID: "a1", Email: "a@example.com", Active: true}, {ID: "a2", Email: "B@example.com", Active: true}},
		CRM:        []directory.User{{ID: "1", Email: "a@example.com", Active: true}, {ID: "2", Email: "b@example.com", Active: true}, {ID: "3", Active: false}}})
	reports := []usersync.Report{
		{Tenant: "demo", LastSyncAt: &now, Match: "email", Users: usersync.UserCounts{MyOperator: 2, CRM: 3},
			Matched:   []usersync.Matched{{MyOperatorUserID: "a1", CRMUserID: "1", Email: "a@example.com", Source: call.MappingEmailMatch, Status: "active"}},
			Unmatched: p.Unmatched, Changes: []usersync.Change{{MyOperatorUserID: "a1", Change: "added", CRMUserID: "1", Status: "active"}},
			LastError: &usersync.Failure{At: now, Message: "x"}},
		{Tenant: "demo", Matched: []usersync.Matched{}, Unmatched: []usermatch.Unmatched{}, Changes: []usersync.Change{}},
	}
	if len(p.Unmatched) != 3 {
		t.Fatalf("unmatched: %+v", p.Unmatched)
	}
	for _, r := range reports {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(mustJSON(t, r)))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("report %s does not match SyncReport: %v", mustJSON(t, r), err)
		}
	}
}
