package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/backfill"
	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/usermatch"
	"github.com/calltrack/calltrack/internal/usersync"
)

// The Setup and Agents pages.

type setupData struct {
	InCall, AfterCall, V2 string
	Token                 string
	CRM                   string
	CRMEndpoint           string
	CRMCredentials        bool
	RateLimit             string
	MyOperatorAPI         string
	MyOperatorToken       bool
	Sync                  tenant.Sync
	Roles                 string
	LastSync              *time.Time
	LastSyncError         string
	Backfill              tenant.Backfill
	BackfillOff           string // why the periodic backfill does not run; "" when it does
	LastBackfill          *backfill.Report
	Policy                policyView      // policy.go
	ClickToCall           clickToCallView // policy.go
}

func (c *Console) tenant(e echo.Context) *tenant.Tenant {
	t, _ := c.Tenants.Get(e.Param("tenant"))
	return t
}

func (c *Console) setup(e echo.Context) error {
	t := c.tenant(e)
	u := c.Admin.WebhookURLs(e, t.ID)
	d := setupData{InCall: u.InCall, AfterCall: u.AfterCall, V2: u.V2, Token: t.WebhookToken.Reveal(), CRM: t.CRM.Name(),
		MyOperatorAPI: t.MyOperatorAPI, MyOperatorToken: t.MyOperatorKey.Reveal() != "", Sync: t.Sync.WithDefaults()}
	d.Roles = strings.Join(d.Sync.Roles, ", ")
	switch t.CRM.Kind {
	case call.CRMZoho:
		d.CRMEndpoint = t.CRM.Zoho.APIDomain
		d.CRMCredentials = t.CRM.Zoho.ClientID != "" && t.CRM.Zoho.RefreshToken.Reveal() != ""
	default:
		d.CRMEndpoint = t.CRM.BaseURL
		d.CRMCredentials = t.CRM.APIKey.Reveal() != ""
	}
	if t.CRM.RateLimit > 0 {
		d.RateLimit = fmt.Sprintf("%g requests/s", t.CRM.RateLimit)
	} else {
		d.RateLimit = "the CRM's default"
	}
	if r, err := c.Sync.Report(e.Request().Context(), t.ID); err == nil {
		d.LastSync = r.LastSyncAt
		if r.LastError != nil {
			d.LastSyncError = r.LastError.Message
		}
	}
	d.Policy = newPolicyView(t.Calls, c.crmNames(e.Request().Context(), t))
	d.ClickToCall = newClickToCallView(t)
	d.Backfill = t.Backfill.WithDefaults()
	switch { // the cases of backfill.Enabled, in words
	case t.MyOperatorKey.Reveal() == "":
		d.BackfillOff = "the tenant has no MyOperator API token (myoperator_api_token_env), so calltrack cannot read its call log"
	case t.Backfill.Disabled:
		d.BackfillOff = "the tenants file turns it off for this tenant (backfill: enabled: false); an admin can still run one through the admin API or the CLI"
	}
	if c.Backfills != nil {
		r, err := c.Backfills.LastReport(e.Request().Context(), t.ID)
		switch {
		case err == nil:
			d.LastBackfill = r
		case !errors.Is(err, backfill.ErrNoReport):
			c.Log.Warn().Err(err).Msg("console: backfill report")
		}
	}
	return c.render(e, http.StatusOK, "setup", &page{Title: "Setup", Tab: "setup", Data: d})
}

// testConnection asks the CRM (and MyOperator, when configured) for their users: the
// call every sync makes, so it proves URL, credentials and permissions at once.
func (c *Console) testConnection(e echo.Context) error {
	t := c.tenant(e)
	ctx, cancel := context.WithTimeout(e.Request().Context(), 20*time.Second)
	defer cancel()
	f := flash{Kind: "ok", Text: "Connection test"}
	check := func(name string, src func(*tenant.Tenant) (directory.Source, error)) {
		if src == nil {
			return
		}
		s, err := src(t)
		if err != nil {
			f.Kind = "error"
			f.Lines = append(f.Lines, name+": not configured — "+err.Error())
			return
		}
		start := time.Now()
		users, err := s.Users(ctx)
		if err != nil {
			f.Kind = "error"
			f.Lines = append(f.Lines, name+": failed — "+err.Error())
			return
		}
		f.Lines = append(f.Lines, fmt.Sprintf("%s: connected, %s listed in %s", name, plural(len(users), "user"), time.Since(start).Round(time.Millisecond)))
	}
	check(t.CRM.Name(), c.Admin.CRMUsers)
	if t.MyOperatorKey.Reveal() != "" {
		check("MyOperator", c.MyOperatorUsers)
	} else {
		f.Lines = append(f.Lines, "MyOperator: no API token configured (myoperator_api_token_env), so user sync and recordings links are off")
	}
	if f.Kind == "error" {
		f.Text = "Connection test failed"
	} else {
		f.Text = "Connection test passed"
	}
	c.Log.Info().Str("tenant", t.ID).Str("admin", admin.FromContext(e).Name).Str("result", f.Kind).Msg("console: connection tested")
	c.setFlash(e, f)
	return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "setup"))
}

// agentRow is one MyOperator agent of the Agents page.
type agentRow struct {
	ID, Name, Email   string
	CRMUser, CRMName  string
	Source, Status    string
	UpdatedAt         time.Time
	UpdatedBy         string
	Mapped            bool
	Unmatched, Reason string
	Detail            string       // what the admin can do about it (the sync's words)
	MapQuery          template.URL // the Map link's query: the map form filled for this agent
	NearCRMUser       string       // the CRM user sync nearly matched it to (e.g. email differs in case)
}

// crmSideRow is a CRM user no agent is mapped to.
type crmSideRow struct {
	usermatch.Unmatched
	MapQuery template.URL
}

// mapQuery fills the map form: the agent, and its uuid, the CRM user and email when
// known (an email that differs only in case names the one CRM user it should be).
func mapQuery(agent, uuid, crmUser, email string) template.URL {
	q := url.Values{}
	for k, v := range map[string]string{"agent": agent, "uuid": uuid, "crm_user": crmUser, "email": email} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return template.URL(q.Encode()) // a query url.Values encoded: safe as it is
}

type agentsData struct {
	Agents      []agentRow
	CRMSide     []crmSideRow
	CRMUsers    []directory.User
	CRMProblem  string
	Report      *usersync.Report
	ReportError string
	Prefill     string // the agent id the map form starts with (?agent=)
	PrefillCRM  string // the CRM user it starts with (?crm_user=)
	PrefillMail string // the agent's email (?email=)
	PrefillUUID string // the agent's uuid, which Webhook v2 names it by (?uuid=)
	// PrefillPhones and PrefillName are a mapped agent's (its Change button): the form
	// replaces the whole mapping, so what it does not show would be dropped on save.
	PrefillPhones string
	PrefillName   string
	Known         []string
}

func (c *Console) agents(e echo.Context) error {
	ctx := e.Request().Context()
	t := c.tenant(e)
	ms, err := c.Mappings.List(ctx, t.ID)
	if err != nil {
		return c.unavailable(e, "read the mappings", err)
	}
	d := agentsData{Prefill: strings.TrimSpace(e.QueryParam("agent")), PrefillCRM: strings.TrimSpace(e.QueryParam("crm_user")),
		PrefillMail: strings.TrimSpace(e.QueryParam("email")), PrefillUUID: strings.TrimSpace(e.QueryParam("uuid")),
		PrefillPhones: strings.TrimSpace(e.QueryParam("phone")), PrefillName: strings.TrimSpace(e.QueryParam("name"))}
	crmNames := map[string]string{}
	users, problem := c.crmUsers(ctx, t)
	if problem != "" {
		d.CRMProblem = problem
	} else {
		d.CRMUsers = slices.Clone(users)
		sort.SliceStable(d.CRMUsers, func(i, j int) bool { return strings.ToLower(d.CRMUsers[i].Name) < strings.ToLower(d.CRMUsers[j].Name) })
		for _, u := range users {
			crmNames[u.ID] = u.Name
		}
	}
	seen := map[string]bool{}
	for _, m := range ms {
		seen[m.MyOperatorUserID] = true
		d.Agents = append(d.Agents, agentRow{ID: m.MyOperatorUserID, Name: m.Name, Email: m.Email, CRMUser: m.CRMUserID,
			CRMName: crmNames[m.CRMUserID], Source: sourceWords(m.Source), Status: m.Status, UpdatedAt: m.UpdatedAt,
			UpdatedBy: m.UpdatedBy, Mapped: true})
	}
	r, err := c.Sync.Report(ctx, t.ID)
	switch {
	case errors.Is(err, usersync.ErrNoReport):
	case err != nil:
		d.ReportError = "the last sync report could not be read"
		c.Log.Warn().Err(err).Msg("console: sync report")
	default:
		d.Report = r
		for _, u := range r.Unmatched {
			cp := ""
			if u.Counterpart != nil {
				cp = u.Counterpart.ID
			}
			if u.Side == usermatch.SideCRM {
				u.Detail = detailOf(u)
				row := crmSideRow{Unmatched: u}
				if u.Reason != usermatch.ReasonInactive { // a deactivated CRM user cannot own calls
					row.MapQuery = mapQuery(cp, "", u.ID, "")
				}
				d.CRMSide = append(d.CRMSide, row)
				continue
			}
			if seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			d.Agents = append(d.Agents, agentRow{ID: u.ID, Name: u.Name, Email: u.Email, Unmatched: "unmatched", Reason: unmatchedWords(u),
				Detail: detailOf(u), MapQuery: mapQuery(u.ID, "", cp, u.Email), NearCRMUser: cp})
		}
	}
	// Agents whose calls wait unattributed, though no sync listed them: by user id, with
	// the uuid, when the call was parked under both (agentToMap).
	if calls, _, err := c.Trace.List(ctx, t.ID, trace.ListOptions{Statuses: []string{trace.StatusUnattributed}, Limit: 200}); err == nil {
		for _, cl := range calls {
			agent, uuid := agentToMap(cl.Agent, cl.ParkedAgent)
			if i := slices.IndexFunc(d.Agents, func(a agentRow) bool { return a.ID == agent && !a.Mapped }); uuid != "" && i >= 0 {
				// Listed by user sync as unmatched: its Map button gets the uuid too.
				a := &d.Agents[i]
				a.MapQuery = mapQuery(agent, uuid, a.NearCRMUser, a.Email)
			}
			if agent != "" && !seen[agent] {
				seen[agent] = true
				d.Agents = append(d.Agents, agentRow{ID: agent, Name: cl.AgentName, Unmatched: "unmatched",
					Reason: "has unattributed calls waiting for a mapping", MapQuery: mapQuery(agent, uuid, "", "")})
			}
		}
	}
	// A mapped agent's Change button: the form starts with the whole mapping, since
	// saving replaces it (an email, uuid or phone left out would stop matching calls).
	if i := slices.IndexFunc(ms, func(m call.Mapping) bool { return m.MyOperatorUserID == d.Prefill }); d.Prefill != "" && i >= 0 {
		m := ms[i]
		d.PrefillCRM = cmp.Or(d.PrefillCRM, m.CRMUserID)
		d.PrefillMail = cmp.Or(d.PrefillMail, m.Email)
		d.PrefillUUID = cmp.Or(d.PrefillUUID, m.MyOperatorUUID)
		d.PrefillPhones, d.PrefillName = cmp.Or(d.PrefillPhones, strings.Join(m.Phones, ", ")), cmp.Or(d.PrefillName, m.Name)
	}
	// A link that names only the agent (an unattributed call's "map the agent") gets
	// the form filled as the agent's own Map button would.
	if d.Prefill != "" && d.PrefillCRM == "" {
		for _, a := range d.Agents {
			if a.ID == d.Prefill && !a.Mapped {
				d.PrefillCRM = a.NearCRMUser
				if d.PrefillMail == "" {
					d.PrefillMail = a.Email
				}
				d.PrefillName = cmp.Or(d.PrefillName, a.Name)
			}
		}
	}
	for id := range seen {
		d.Known = append(d.Known, id)
	}
	sort.Strings(d.Known)
	return c.render(e, http.StatusOK, "agents", &page{Title: "Agents", Tab: "agents", Data: d})
}

// crmUsers lists the tenant's CRM users (kept a minute by the admin API, which checks
// mappings against the same list), or says in words why not.
func (c *Console) crmUsers(ctx context.Context, t *tenant.Tenant) ([]directory.User, string) {
	if c.Admin.CRMUsers == nil {
		return nil, admin.ErrNoCRMUsers.Error()
	}
	src, err := c.Admin.CRMUsers(t)
	if err != nil {
		return nil, err.Error()
	}
	users, err := c.Admin.UserCache.Users(ctx, t.ID, src)
	if err != nil {
		return nil, "the CRM's users could not be listed: " + err.Error()
	}
	return users, ""
}

// crmNames maps the tenant's CRM user ids to names; empty when the CRM cannot list them.
func (c *Console) crmNames(ctx context.Context, t *tenant.Tenant) map[string]string {
	names := map[string]string{}
	users, _ := c.crmUsers(ctx, t)
	for _, u := range users {
		names[u.ID] = u.Name
	}
	return names
}

// detailOf is the sync's advice on an unmatched user, when it says more than the reason.
func detailOf(u usermatch.Unmatched) string {
	if u.Reason == usermatch.ReasonNoMatch {
		return ""
	}
	return u.Detail
}

func sourceWords(s string) string {
	switch s {
	case call.MappingManual:
		return "manual"
	case call.MappingEmailMatch, call.MappingPhoneMatch, call.MappingFieldMatch:
		return "sync (" + strings.TrimSuffix(s, "-match") + ")"
	}
	return s
}

// mapAgent maps an agent to a CRM user by hand (a manual mapping, as the admin API's
// PUT makes it).
func (c *Console) mapAgent(e echo.Context) error {
	t := c.tenant(e)
	ad := admin.FromContext(e)
	agent, crmUser := strings.TrimSpace(e.FormValue("agent")), strings.TrimSpace(e.FormValue("crm_user"))
	back := tenantPath(t.ID, "agents")
	// A refused form comes back as it was typed: an admin who retypes only what the
	// flash names must not lose the uuid, email or phones (the mapping then misses calls).
	again := func() error {
		q := url.Values{}
		for _, k := range []string{"agent", "crm_user", "email", "uuid", "phone", "name"} {
			if v := strings.TrimSpace(e.FormValue(k)); v != "" {
				q.Set(k, v)
			}
		}
		return e.Redirect(http.StatusSeeOther, back+"?"+q.Encode()+"#map")
	}
	if agent == "" || crmUser == "" {
		c.setFlash(e, flash{Kind: "error", Text: "Choose both the MyOperator agent and the CRM user to map it to."})
		return again()
	}
	m := call.Mapping{MyOperatorUserID: agent, CRMUserID: crmUser, Email: strings.TrimSpace(e.FormValue("email")),
		Name: strings.TrimSpace(e.FormValue("name")), MyOperatorUUID: strings.TrimSpace(e.FormValue("uuid"))}
	// Several numbers, comma-separated (a mapped agent's Change shows all of them).
	var phones []string
	for p := range strings.SplitSeq(e.FormValue("phone"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			phones = append(phones, p)
		}
	}
	stored, err := c.Admin.SetMapping(e.Request().Context(), t.ID, m, phones, admin.Actor("console", ad))
	if err != nil {
		c.setFlash(e, flash{Kind: "error", Text: "The agent was not mapped. " + problemOf(err)})
		return again()
	}
	f := flash{Kind: "ok", Text: fmt.Sprintf("Agent %s is mapped to CRM user %s. Their unattributed calls are written under that user within seconds.", stored.MyOperatorUserID, stored.CRMUserID)}
	if stored.Warning != "" {
		f.Lines = []string{"Note: " + stored.Warning + "."}
	}
	c.setFlash(e, f)
	return e.Redirect(http.StatusSeeOther, back)
}

func (c *Console) unmapAgent(e echo.Context) error {
	t := c.tenant(e)
	user, err := admin.AgentParam(e)
	if err != nil {
		c.setFlash(e, flash{Kind: "error", Text: "The mapping was not removed. " + problemOf(err)})
		return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "agents"))
	}
	if err := c.Admin.DeleteMapping(e.Request().Context(), t.ID, user, admin.Actor("console", admin.FromContext(e))); err != nil {
		c.setFlash(e, flash{Kind: "error", Text: "The mapping was not removed. " + problemOf(err)})
	} else {
		c.setFlash(e, flash{Kind: "ok", Text: "Agent " + user + " is unmapped; user sync may match them again."})
	}
	return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "agents"))
}

func (c *Console) approveAgent(e echo.Context) error {
	t := c.tenant(e)
	user, err := admin.AgentParam(e)
	if err != nil {
		c.setFlash(e, flash{Kind: "error", Text: "The mapping was not approved. " + problemOf(err)})
		return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "agents"))
	}
	m, err := c.Sync.Approve(e.Request().Context(), t.ID, user, admin.Actor("console", admin.FromContext(e)))
	var conflict *mapping.ConflictError
	switch {
	case errors.As(err, &conflict):
		c.setFlash(e, flash{Kind: "error", Text: "The mapping was not approved. " + problemOf(admin.ConflictError(conflict))})
	case errors.Is(err, mapping.ErrNotFound):
		c.setFlash(e, flash{Kind: "error", Text: "Agent " + user + " has no mapping to approve (it may have been removed meanwhile)."})
	case errors.Is(err, usersync.ErrNotPending):
		c.setFlash(e, flash{Kind: "error", Text: "Agent " + user + "'s mapping is not waiting for approval any more."})
	case err != nil:
		return c.unavailable(e, "approve the mapping", err)
	default:
		c.setFlash(e, flash{Kind: "ok", Text: fmt.Sprintf("Approved: agent %s is mapped to CRM user %s.", m.MyOperatorUserID, m.CRMUserID)})
	}
	return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "agents"))
}

// resync runs a user sync now and shows its report.
func (c *Console) resync(e echo.Context) error {
	t := c.tenant(e)
	// Once started, a sync finishes even if the admin leaves the page.
	r, err := c.Sync.Sync(context.WithoutCancel(e.Request().Context()), t.ID, usersync.Options{Wait: 30 * time.Second})
	c.Admin.ForgetCRMUsers(t.ID)
	var f flash
	switch {
	case errors.Is(err, usersync.ErrNotConfigured):
		f = flash{Kind: "error", Text: "User sync is not set up for this tenant: " + strings.TrimPrefix(err.Error(), "usersync: ")}
	case errors.Is(err, usersync.ErrBusy):
		f = flash{Kind: "error", Text: "A sync of this tenant is already running; try again in a minute."}
	case errors.Is(err, usersync.ErrUpstream):
		f = flash{Kind: "error", Text: "The sync could not list the users: " + strings.TrimPrefix(err.Error(), "usersync: ")}
	case err != nil:
		return c.unavailable(e, "run the sync", err)
	default:
		f = flash{Kind: "ok", Text: fmt.Sprintf("Resync done: %s and %s listed, %s mapped, %s unmatched, %s.",
			plural(r.Users.MyOperator, "MyOperator user"), plural(r.Users.CRM, "CRM user"), plural(len(r.Matched), "agent"),
			plural(len(r.Unmatched), "user"), plural(len(r.Changes), "change"))}
		for _, ch := range r.Changes {
			line := fmt.Sprintf("%s: agent %s", ch.Change, ch.MyOperatorUserID)
			if ch.CRMUserID != "" {
				line += " → CRM user " + ch.CRMUserID
			}
			if ch.Detail != "" {
				line += " (" + ch.Detail + ")"
			}
			f.Lines = append(f.Lines, line)
		}
		f.Lines = append(f.Lines, r.Warnings...)
	}
	c.setFlash(e, f)
	return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "agents"))
}
