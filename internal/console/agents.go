package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
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
}

func (c *Console) tenant(e echo.Context) *tenant.Tenant {
	t, _ := c.Tenants.Get(e.Param("tenant"))
	return t
}

func (c *Console) setup(e echo.Context) error {
	t := c.tenant(e)
	u := c.Admin.WebhookURLs(e, t.ID)
	d := setupData{InCall: u.InCall, AfterCall: u.AfterCall, V2: u.V2, Token: t.WebhookToken.Reveal(), CRM: crmName(t.CRM.Kind),
		MyOperatorAPI: t.MyOperatorAPI, MyOperatorToken: t.MyOperatorKey.Reveal() != "", Sync: t.Sync.WithDefaults()}
	d.Roles = strings.Join(d.Sync.Roles, ", ")
	switch t.CRM.Kind {
	case "zoho":
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
		f.Lines = append(f.Lines, fmt.Sprintf("%s: connected, %d users listed in %s", name, len(users), time.Since(start).Round(time.Millisecond)))
	}
	check(crmName(t.CRM.Kind), c.CRMUsers)
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
}

type agentsData struct {
	Agents      []agentRow
	CRMSide     []usersync.Unmatched
	CRMUsers    []directory.User
	CRMProblem  string
	Report      *usersync.Report
	ReportError string
	Prefill     string // the agent id the map form starts with (?agent=)
	Known       []string
}

func (c *Console) agents(e echo.Context) error {
	ctx := e.Request().Context()
	t := c.tenant(e)
	ms, err := c.Mappings.List(ctx, t.ID)
	if err != nil {
		return c.unavailable(e, "read the mappings", err)
	}
	d := agentsData{Prefill: strings.TrimSpace(e.QueryParam("agent"))}
	crmNames := map[string]string{}
	if c.CRMUsers != nil {
		if src, err := c.CRMUsers(t); err != nil {
			d.CRMProblem = err.Error()
		} else if users, err := c.users.get(ctx, t.ID, src); err != nil {
			d.CRMProblem = "the CRM's users could not be listed: " + err.Error()
		} else {
			d.CRMUsers = slices.Clone(users)
			sort.SliceStable(d.CRMUsers, func(i, j int) bool { return strings.ToLower(d.CRMUsers[i].Name) < strings.ToLower(d.CRMUsers[j].Name) })
			for _, u := range users {
				crmNames[u.ID] = u.Name
			}
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
			if u.Side == usersync.SideCRM {
				d.CRMSide = append(d.CRMSide, u)
				continue
			}
			if seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			d.Agents = append(d.Agents, agentRow{ID: u.ID, Name: u.Name, Email: u.Email, Unmatched: "unmatched", Reason: unmatchedWords(u)})
		}
	}
	// Agents whose calls wait unattributed, though no sync listed them.
	if calls, _, err := c.Trace.List(ctx, t.ID, trace.ListOptions{Statuses: []string{trace.StatusUnattributed}, Limit: 200}); err == nil {
		for _, cl := range calls {
			if cl.Agent != "" && !seen[cl.Agent] {
				seen[cl.Agent] = true
				d.Agents = append(d.Agents, agentRow{ID: cl.Agent, Name: cl.AgentName, Unmatched: "unmatched",
					Reason: "has unattributed calls waiting for a mapping"})
			}
		}
	}
	for id := range seen {
		d.Known = append(d.Known, id)
	}
	sort.Strings(d.Known)
	return c.render(e, http.StatusOK, "agents", &page{Title: "Agents", Tab: "agents", Data: d})
}

func sourceWords(s string) string {
	switch s {
	case mapping.SourceManual:
		return "manual"
	case mapping.SourceEmailMatch, mapping.SourcePhoneMatch, mapping.SourceFieldMatch:
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
	if agent == "" || crmUser == "" {
		c.setFlash(e, flash{Kind: "error", Text: "Choose both the MyOperator agent and the CRM user to map it to."})
		return e.Redirect(http.StatusSeeOther, back+"?agent="+agent)
	}
	m := mapping.Mapping{MyOperatorUserID: agent, CRMUserID: crmUser, Email: strings.TrimSpace(e.FormValue("email")),
		Name: strings.TrimSpace(e.FormValue("name"))}
	var phones []string
	if p := strings.TrimSpace(e.FormValue("phone")); p != "" {
		phones = []string{p}
	}
	stored, err := c.Admin.SetMapping(e.Request().Context(), t.ID, m, phones, admin.Actor("console", ad))
	if err != nil {
		c.setFlash(e, flash{Kind: "error", Text: "The agent was not mapped. " + problemOf(err)})
		return e.Redirect(http.StatusSeeOther, back+"?agent="+agent)
	}
	c.setFlash(e, flash{Kind: "ok", Text: fmt.Sprintf("Agent %s is mapped to CRM user %s. Their unattributed calls are written under that user within seconds.", stored.MyOperatorUserID, stored.CRMUserID)})
	return e.Redirect(http.StatusSeeOther, back)
}

func (c *Console) unmapAgent(e echo.Context) error {
	t := c.tenant(e)
	user := e.Param("user")
	if err := c.Admin.DeleteMapping(e.Request().Context(), t.ID, user, admin.Actor("console", admin.FromContext(e))); err != nil {
		c.setFlash(e, flash{Kind: "error", Text: "The mapping was not removed. " + problemOf(err)})
	} else {
		c.setFlash(e, flash{Kind: "ok", Text: "Agent " + user + " is unmapped; user sync may match them again."})
	}
	return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "agents"))
}

func (c *Console) approveAgent(e echo.Context) error {
	t := c.tenant(e)
	user := e.Param("user")
	m, err := c.Sync.Approve(e.Request().Context(), t.ID, user, admin.Actor("console", admin.FromContext(e)))
	switch {
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
	c.users.forget(t.ID)
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
		f = flash{Kind: "ok", Text: fmt.Sprintf("Resync done: %d MyOperator users and %d CRM users listed, %d agents mapped, %d users unmatched, %d changes.",
			r.Users.MyOperator, r.Users.CRM, len(r.Matched), len(r.Unmatched), len(r.Changes))}
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
