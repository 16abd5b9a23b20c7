package schemas_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/backfill"
	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/clicktocall"
	"github.com/calltrack/calltrack/internal/ingest"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/recording"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/usersync"
	"github.com/calltrack/calltrack/internal/web"
)

const openapiURL = "https://calltrack.dev/schemas/openapi.yaml"

// loadOpenAPI reads openapi.yaml as JSON-compatible values.
func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(b, &y); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	j, err := json.Marshal(y)
	if err != nil {
		t.Fatalf("openapi.yaml is not JSON-compatible: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return doc.(map[string]any)
}

func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	walk(doc, func(m map[string]any) {
		if ref, ok := m["$ref"].(string); ok {
			if _, err := pointer(doc, ref); err != nil {
				t.Errorf("$ref %q: %v", ref, err)
			}
		}
	})
	// Every security requirement names a declared scheme.
	schemes := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	walk(doc, func(m map[string]any) {
		for _, req := range asSlice(m["security"]) {
			for name := range req.(map[string]any) {
				if _, ok := schemes[name]; !ok {
					t.Errorf("security scheme %q is not declared", name)
				}
			}
		}
	})
}

// The paths and methods of openapi.yaml are exactly the routes the code mounts.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := web.New(zerolog.Nop(), metrics.New(), nil)
	(&ingest.Handler{}).Register(e)
	(&admin.API{}).Register(e)
	(&usersync.API{}).Register(e.Group("/admin/v1"))
	(&backfill.API{}).Register(e.Group("/admin/v1"))
	(&ingest.V2{Handler: &ingest.Handler{}}).Register(e)
	(&recording.Handler{}).Register(e)
	(&clicktocall.API{}).Register(e)
	(&clicktocall.ZohoDial{}).Register(e)
	(&app.App{}).RegisterCRM(e, noAuth{}) // PhoneBridge setup, CRM users, CRM test
	param := regexp.MustCompile(`:[^/]+`)
	var code []string
	for _, r := range e.Routes() {
		if !slices.Contains([]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}, r.Method) {
			continue // echo's internal route-not-found handlers
		}
		code = append(code, r.Method+" "+param.ReplaceAllString(r.Path, "{}"))
	}
	braces := regexp.MustCompile(`\{[^}]+\}`)
	var spec []string
	for path, item := range loadOpenAPI(t)["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if m := strings.ToUpper(method); slices.Contains([]string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}, m) {
				spec = append(spec, m+" "+braces.ReplaceAllString(path, "{}"))
			}
		}
	}
	sort.Strings(code)
	sort.Strings(spec)
	code = slices.Compact(code)
	if len(code) < 10 {
		t.Fatalf("found only these routes in the code: %v", code)
	}
	for _, r := range code {
		if !slices.Contains(spec, r) {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for _, r := range spec {
		if !slices.Contains(code, r) {
			t.Errorf("openapi.yaml has %s, which the code does not serve", r)
		}
	}
}

// noAuth stands for the admin auth hook routes are mounted behind.
type noAuth struct{}

func (noAuth) RequireAdmin(next echo.HandlerFunc) echo.HandlerFunc { return next }

// Bodies the code produces match the OpenAPI component schemas.
func TestOpenAPIBodies(t *testing.T) {
	doc := loadOpenAPI(t)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(jsonschema.SchemeURLLoader{})
	if err := c.AddResource(openapiURL, doc); err != nil {
		t.Fatal(err)
	}
	check := func(ptr string, v any, valid bool) {
		t.Helper()
		sch, err := c.Compile(openapiURL + "#" + ptr)
		if err != nil {
			t.Fatalf("%s: %v", ptr, err)
		}
		b := mustJSON(t, v)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); (err == nil) != valid {
			t.Errorf("%s: valid=%v, want %v for %s: %v", ptr, err == nil, valid, b, err)
		}
	}
	we := web.Errorf(http.StatusBadRequest, "malformed_payload", "afterCall: no call id")
	check("/components/schemas/Error", map[string]any{"error": we}, true)
	check("/components/schemas/Error", map[string]any{"error": map[string]any{"code": "x"}}, false)

	m := call.Mapping{MyOperatorUserID: "5cd40f6556f2f124", CRMUserID: "1201", Email: "a@example.com",
		Phones: []string{"+918586848544"}, Name: "A", Source: call.MappingManual, Status: call.MappingActive,
		UpdatedAt: time.Now().UTC(), UpdatedBy: "admin-api"}
	check("/components/schemas/Mapping", m, true)
	check("/components/schemas/Mapping", call.Mapping{MyOperatorUserID: "u", CRMUserID: "c", Status: "bogus"}, false)
	check("/components/schemas/MappingStored", admin.Stored{Mapping: m, Warning: "CRM user 1201 was not checked"}, true)
	check("/components/schemas/MappingStored", admin.Stored{Mapping: m}, true)
	check("/paths/~1admin~1v1~1tenants~1{tenant}~1mappings/get/responses/200/content/application~1json/schema",
		map[string]any{"mappings": []call.Mapping{m}}, true)

	tr := trace.Trace{Tenant: "demo", CallID: "n2.1", LogID: "6a01", Status: trace.StatusWritten, Agent: "5cd40f6556f2f124",
		Stages: []trace.Stage{{Stage: trace.StatusReceived, At: time.Now().UTC(), Kind: "log"}, {Stage: "recording_attached", At: time.Now().UTC()}}}
	check("/components/schemas/Trace", tr, true) // owner and crm null
	tr.Owner = &struct {
		CRMUserID string `json:"crm_user_id"`
	}{"1201"}
	tr.CRM = &struct {
		RecordID string `json:"record_id"`
	}{"rec-1"}
	check("/components/schemas/Trace", tr, true)
	tr.Status = "bogus"
	check("/components/schemas/Trace", tr, false)

	check("/components/schemas/MappingPut", map[string]any{"crm_user_id": "1", "phones": []string{"98585 48544"}}, true)
	check("/components/schemas/MappingPut", map[string]any{"crm_user_id": "1", "source": "manual"}, false)
	check("/components/responses/WebhookAccepted/content/application~1json/schema",
		map[string]any{"status": "accepted", "tenant": "demo", "call_id": "n2.1"}, true)
	check("/components/responses/WebhookAccepted/content/application~1json/schema",
		map[string]any{"status": "queued", "tenant": "demo", "call_id": "n2.1"}, false)
	check("/components/schemas/Readiness", map[string]any{"status": "ready", "checks": map[string]string{"kafka": "ok", "redis": "ok"}}, true)
	check("/components/schemas/WebhookURLs", map[string]any{"incall": "https://x/webhooks/myoperator/demo/incall",
		"aftercall": "https://x/webhooks/myoperator/demo/aftercall", "v2": "https://x/webhooks/myoperator/demo/v2", "auth": "append ?token="}, true)

	// The admin API's Mapping and the mapping topic's schema describe the same object.
	spec := doc["components"].(map[string]any)["schemas"].(map[string]any)["Mapping"].(map[string]any)
	topic := loadDoc(t, tMapping)
	keys := func(m map[string]any) []string {
		var out []string
		for k := range m["properties"].(map[string]any) {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	if a, b := keys(spec), keys(topic); !slices.Equal(a, b) {
		t.Errorf("OpenAPI Mapping properties %v != %s properties %v", a, tMapping, b)
	}
	if a, b := mustJSON(t, spec["required"]), mustJSON(t, topic["required"]); !bytes.Equal(a, b) {
		t.Errorf("OpenAPI Mapping required %s != %s required %s", a, tMapping, b)
	}
}
