package schemas_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/calltrack/calltrack/internal/backfill"
)

// The backfill report the code produces matches the OpenAPI's BackfillReport.
func TestOpenAPIBackfillReport(t *testing.T) {
	sch := openapiSchema(t, "/components/schemas/BackfillReport")
	now := time.Now().UTC()
	for _, r := range []backfill.Report{
		{Tenant: "demo", Trigger: backfill.TriggerAdmin, Since: now.Add(-time.Hour), Until: now, Found: 3, Known: 2, Published: 1,
			Calls: []string{"n2.1"}, Pages: 1, StartedAt: now, TookMS: 12},
		{Tenant: "demo", Trigger: backfill.TriggerCLI, DryRun: true, Since: now.Add(-time.Hour), Until: now, Found: 1, WouldPublish: 1, StartedAt: now},
		{Tenant: "demo", Trigger: backfill.TriggerSchedule, Since: now.Add(-time.Hour), Until: now, StartedAt: now, Error: "backfill: MyOperator's call-log search failed"},
	} {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(mustJSON(t, r)))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("report %s does not match BackfillReport: %v", mustJSON(t, r), err)
		}
	}
	bad, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(`{"tenant":"demo","trigger":"cron"}`)))
	if sch.Validate(bad) == nil {
		t.Error("an unknown trigger must not validate")
	}
}

// openapiSchema compiles one schema of openapi.yaml (a JSON pointer into it).
func openapiSchema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(jsonschema.SchemeURLLoader{})
	if err := c.AddResource(openapiURL, loadOpenAPI(t)); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(openapiURL + "#" + ptr)
	if err != nil {
		t.Fatalf("%s: %v", ptr, err)
	}
	return sch
}
