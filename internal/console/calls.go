package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callpolicy"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
)

// The Calls page and a call's page.

// statusFilters are the Calls page's status choices, in the order shown.
var statusFilters = []struct{ Value, Label string }{
	{trace.StatusWritten, "written"},
	{trace.StatusUnattributed, "unattributed"},
	{trace.StatusRetrying, "retrying"},
	{trace.StatusDeadLettered, "dead-lettered"},
	{callpolicy.StatusSkipped, "skipped by policy"},
	{trace.Waiting, "waiting"},
}

type callRow struct {
	trace.Entry
	RecordURL string
	OwnerName string       // the owner's name in the CRM, when the CRM lists its users
	MapQuery  template.URL // an unattributed call's "map the agent" link: the map form filled (agentToMap)
}

type callsData struct {
	Calls    []callRow
	Statuses []struct{ Value, Label string }
	Status   string
	Agent    string
	Agents   []string
	Next     template.URL // query of the next page (url.Values encoded); "" when none
	Filtered bool
	// RecordNote says why CRM records are not links, when they are not.
	RecordNote string
}

func (c *Console) calls(e echo.Context) error {
	t := c.tenant(e)
	d := callsData{Statuses: statusFilters, Status: e.QueryParam("status"), Agent: strings.TrimSpace(e.QueryParam("agent"))}
	o := trace.ListOptions{Agent: d.Agent, Limit: 50}
	if d.Status != "" {
		o.Statuses = []string{d.Status}
	}
	if b, err := trace.ParseCursor(e.QueryParam("before")); err == nil {
		o.Before = b // a malformed one lists from the newest
	}
	d.Filtered = d.Status != "" || d.Agent != "" || !o.Before.IsZero()
	entries, more, err := c.Trace.List(e.Request().Context(), t.ID, o)
	if err != nil {
		return c.unavailable(e, "list the calls", err)
	}
	names := c.crmNames(e.Request().Context(), t)
	for _, en := range entries {
		row := callRow{Entry: en, RecordURL: RecordURL(t, en.RecordID), OwnerName: names[en.Owner]}
		if en.Status == trace.StatusUnattributed {
			agent, uuid := agentToMap(en.Agent, en.ParkedAgent)
			row.MapQuery = mapQuery(agent, uuid, "", "")
		}
		d.Calls = append(d.Calls, row)
	}
	d.RecordNote = recordNote(t)
	if more && len(entries) > 0 {
		q := url.Values{"before": {entries[len(entries)-1].Cursor().String()}}
		if d.Status != "" {
			q.Set("status", d.Status)
		}
		if d.Agent != "" {
			q.Set("agent", d.Agent)
		}
		d.Next = template.URL(q.Encode())
	}
	if ms, err := c.Mappings.List(e.Request().Context(), t.ID); err == nil {
		for _, m := range ms {
			d.Agents = append(d.Agents, m.MyOperatorUserID)
		}
	}
	return c.render(e, http.StatusOK, "calls", &page{Title: "Calls", Tab: "calls", Data: d})
}

// RecordURL links to a call's record in the tenant's CRM, "" when calltrack does not
// know the CRM's web address for it (the record id is shown instead). Zoho's web app
// links a record as https://crm.<data centre>/crm/<org domain_name>/tab/Calls/<id>: the
// web host is the accounts host with "accounts." made "crm." (crm.zohocloud.ca for
// Canada), the org segment the tenant's crm.org_domain (GET /crm/v8/org's
// domain_name). Zoho documents no record URL (docs/crm-contracts.md), so without the
// org segment calltrack makes no link rather than one that may not open. Kylas
// documents no web address of a call log.
func RecordURL(t *tenant.Tenant, recordID string) string {
	z := t.CRM.Zoho
	if recordID == "" || t.CRM.Kind != call.CRMZoho || z.OrgDomain == "" {
		return ""
	}
	host, ok := strings.CutPrefix(z.AccountsURL, "https://accounts.")
	if !ok || !strings.Contains(host, "zoho") || strings.ContainsAny(host, "/:") {
		return ""
	}
	return "https://crm." + host + "/crm/" + url.PathEscape(z.OrgDomain) + "/tab/Calls/" + url.PathEscape(recordID)
}

// recordNote says, for a CRM whose record links calltrack cannot make, why the
// console shows the record's id instead.
func recordNote(t *tenant.Tenant) string {
	switch {
	case t.CRM.Kind == call.CRMKylas:
		// Kylas's public API documents /v1/call-logs only, no web-app URL of a record.
		return "Kylas documents no web address for a call log, so the record is shown by its id; in Kylas, the call is listed under its lead's or contact's activities."
	case t.CRM.Kind == call.CRMZoho && t.CRM.Zoho.OrgDomain == "":
		return "Set crm.org_domain (the org's domain_name from Zoho's GET /crm/v8/org, e.g. org74822955) to link records to Zoho; the record id is shown."
	case t.CRM.Kind == call.CRMZoho && RecordURL(t, "x") == "":
		return "This tenant's Zoho accounts address (" + t.CRM.Zoho.AccountsURL + ") is not one of Zoho's data centres (accounts.zoho.<dc>), so calltrack cannot tell the web address of its records; the record id is shown."
	}
	return ""
}

type callData struct {
	Trace      *trace.Trace
	Info       trace.Entry // direction, start, duration, outcome; zero when the index has none
	RecordURL  string
	RecordNote string
	OwnerName  string
	Stages     []stageRow
	Mapped     bool // the agent has an active mapping now
	// MapAgent and MapUUID are the agent an unattributed call asks to map (agentToMap),
	// MapQuery the map form's query filled with them.
	MapAgent, MapUUID string
	MapQuery          template.URL
}

// agentToMap is the agent an unattributed call asks to map, for the map form: its
// MyOperator user id (what mappings are keyed by, and afterCalls name it by) with the
// uuid Webhook v2 names it by, as the writer kept them when it parked the call's
// versions (trace.ParkedAgent). A mapping of the uuid alone would attribute this call
// but leave the agent's afterCalls unattributed; one of the user id alone, its v2
// calls. Without a user id (only Webhook v2 named the agent, or a trace from before
// the ids were kept), the agent the trace shows, as the map form's id.
func agentToMap(shown string, p *trace.ParkedAgent) (agent, uuid string) {
	if p == nil || p.MyOperatorUserID == "" {
		return shown, ""
	}
	return p.MyOperatorUserID, p.MyOperatorUUID
}

type stageRow struct {
	trace.Stage
	Since string // since the stage before
	Tone  string // ok, warn, bad, info: the dot's colour
	Words string // what the stage means
}

func (c *Console) callPage(e echo.Context) error {
	t := c.tenant(e)
	ctx := e.Request().Context()
	tr, err := c.Trace.Get(ctx, t.ID, e.Param("call"))
	if errors.Is(err, trace.ErrNotFound) {
		return c.fail(e, http.StatusNotFound, "calltrack has no trace of call "+e.Param("call")+" of tenant "+t.ID+". Traces are kept 7 days; check the call id (the MyOperator call UID or the afterCall log id).")
	}
	if err != nil {
		return c.unavailable(e, "read the call's trace", err)
	}
	d := callData{Trace: tr, RecordNote: recordNote(t)}
	if info, err := c.Trace.Info(ctx, t.ID, tr.CallID); err == nil {
		d.Info = info
	} else if !errors.Is(err, trace.ErrNotFound) {
		c.Log.Warn().Err(err).Msg("console: call info") // the page still shows the trace
	}
	if tr.CRM != nil {
		d.RecordURL = RecordURL(t, tr.CRM.RecordID)
	}
	if tr.Owner != nil {
		d.OwnerName = c.crmNames(ctx, t)[tr.Owner.CRMUserID]
	}
	prev := time.Time{}
	for i, s := range tr.Stages {
		r := stageRow{Stage: s, Tone: toneOf(s.Stage), Words: stageWords(s.Stage, s.Kind)}
		if i > 0 {
			r.Since = "+" + trace.Since(prev, s.At)
		}
		prev = s.At
		d.Stages = append(d.Stages, r)
	}
	d.MapAgent, d.MapUUID = agentToMap(tr.Agent, tr.ParkedAgent)
	if tr.Status == trace.StatusUnattributed {
		d.MapQuery = mapQuery(d.MapAgent, d.MapUUID, "", "")
	}
	// Mapped by either id (a mapping's uuid attributes v2 calls too).
	for _, id := range []string{d.MapAgent, d.MapUUID} {
		if id == "" || d.Mapped {
			continue
		}
		if _, err := c.Mappings.Resolve(ctx, t.ID, call.Agent{ID: id}); err == nil { // active only
			d.Mapped = true
		}
	}
	return c.render(e, http.StatusOK, "call", &page{Title: "Call " + tr.CallID, Tab: "calls", Data: d})
}

func toneOf(stage string) string {
	switch stage {
	case trace.StatusWritten, trace.StageAlreadyWritten, trace.StageRecordingAttached, trace.StageDispositionAdded,
		trace.StageAmended, trace.StageAdopted, callpolicy.StageTaskCreated, callpolicy.StageTaskAdopted:
		return "ok"
	case trace.StatusRetrying, trace.StatusUnattributed, "duplicate_ignored", trace.StageOutcomeUnknown, callpolicy.StageTaskUnknown:
		return "warn"
	case trace.StatusDeadLettered, "dropped":
		return "bad"
	}
	return "info"
}
