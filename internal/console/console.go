// Package console serves calltrack's admin console at /console/: server-rendered Go
// templates (html/template) and a little plain JavaScript, embedded in the binary with
// go:embed, so the binary stays self-contained, pages come whole in one request and
// work without a build step. Chart.js (vendored, MIT) draws the Overview's charts.
// Operators see every tenant, tenant admins their own; every change goes through the
// same actions as the admin API (admin.API), user sync (usersync.Service) and replay
// (the DeadLetters the app hands in).
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/backfill"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/dlq"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/usersync"
	"github.com/calltrack/calltrack/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DeadLetters reads a tenant's dead letters and replays them (dlq and replay, with the
// app's Kafka client and producer).
type DeadLetters interface {
	Summary(ctx context.Context, tenant string, since time.Time) (dlq.Summary, error)
	// Replay re-drives the tenant's dead letters as r says; sent is told how many went
	// so far.
	Replay(ctx context.Context, tenant string, r ReplayRequest, sent func(int)) (replay.Summary, error)
}

// ReplayRequest is what a console replay re-drives: the window's dead letters, only
// those of Reasons when any are given.
type ReplayRequest struct {
	Since   time.Time
	Reasons []string
	DryRun  bool
	// Reattribute drops the owner ingest resolved from call logs, as the CLI's
	// --reattribute does: the writer attributes them with today's mappings.
	Reattribute bool
}

// Console is the admin console.
type Console struct {
	Auth     *admin.Auth
	Admin    *admin.API // mapping actions and webhook URLs, shared with the admin API
	Tenants  *tenant.Registry
	Mappings *mapping.Store
	Trace    *trace.Store
	Sync     *usersync.Service
	// MyOperatorUsers lists a tenant's MyOperator users ("test connection"); the CRM's
	// users come through Admin (its CRMUsers, kept in its UserCache), which checks
	// mappings against them.
	MyOperatorUsers func(*tenant.Tenant) (directory.Source, error)
	DeadLetters     DeadLetters
	// Backfills reads a tenant's last backfill report (backfill.Service); nil: the
	// Setup page shows the settings only.
	Backfills interface {
		LastReport(ctx context.Context, tenant string) (*backfill.Report, error)
	}
	Redis  redis.UniversalClient
	Prefix string
	Dev    bool // plain-HTTP dev mode: cookies without Secure
	Log    zerolog.Logger

	pages map[string]*template.Template
}

// Register mounts the console on e.
func (c *Console) Register(e *echo.Echo) error {
	if err := c.parse(); err != nil {
		return err
	}
	static, _ := fs.Sub(staticFS, "static")
	g := e.Group("/console", middleware.Gzip(), c.headers)
	g.GET("/static/*", echo.WrapHandler(http.StripPrefix("/console/static/", cacheFor(time.Hour, http.FileServer(http.FS(static))))))
	g.GET("/sign-in", c.signInPage)
	g.POST("/sign-in", c.signIn)
	in := g.Group("", c.requireSession)
	in.GET("/", c.index)
	in.POST("/sign-out", c.signOut)
	t := in.Group("/tenants/:tenant", c.requireTenant)
	t.GET("", func(e echo.Context) error {
		return e.Redirect(http.StatusSeeOther, tenantPath(e.Param("tenant"), "overview"))
	})
	t.GET("/setup", c.setup)
	t.POST("/setup/test-connection", c.testConnection)
	t.GET("/agents", c.agents)
	t.POST("/agents/map", c.mapAgent)
	t.POST("/agents/:user/unmap", c.unmapAgent)
	t.POST("/agents/:user/approve", c.approveAgent)
	t.POST("/agents/resync", c.resync)
	t.GET("/calls", c.calls)
	t.GET("/calls/:call", c.callPage)
	t.GET("/dlq", c.deadLetters)
	t.POST("/dlq/replay", c.replay)
	t.GET("/dlq/replay/:job", c.replayProgress)
	t.GET("/overview", c.overview)
	e.GET("/console", func(e echo.Context) error { return e.Redirect(http.StatusMovedPermanently, "/console/") })
	return nil
}

// headers: pages are private and never framed or cached.
func (c *Console) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(e echo.Context) error {
		h := e.Response().Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		if !strings.HasPrefix(e.Request().URL.Path, "/console/static/") {
			h.Set("Cache-Control", "no-store")
		}
		return next(e)
	}
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("private, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// requireTenant lets an admin into a tenant's pages only if it is theirs (operators:
// any known tenant).
func (c *Console) requireTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(e echo.Context) error {
		ad := admin.FromContext(e)
		if err := admin.Allow(ad, c.Tenants, e.Param("tenant")); err != nil {
			var we *web.Error
			if errors.As(err, &we) && we.Status == http.StatusForbidden {
				return c.fail(e, http.StatusForbidden, fmt.Sprintf("You are signed in as a tenant admin of %s, so you cannot see tenant %s.", ad.Tenant, e.Param("tenant")))
			}
			return c.fail(e, http.StatusNotFound, "There is no tenant "+e.Param("tenant")+".")
		}
		return next(e)
	}
}

// home is where an admin lands: the tenant list for operators, their tenant otherwise.
func (c *Console) home(ad *tenant.Admin) string {
	if ad.Operator() {
		return "/console/"
	}
	return tenantPath(ad.Tenant, "overview")
}

func tenantPath(id, pageName string) string {
	return "/console/tenants/" + url.PathEscape(id) + "/" + pageName
}

// index lists the tenants (operators) or sends a tenant admin to theirs.
func (c *Console) index(e echo.Context) error {
	ad := admin.FromContext(e)
	if !ad.Operator() {
		return e.Redirect(http.StatusSeeOther, c.home(ad))
	}
	type row struct{ ID, CRM string }
	var rows []row
	for _, id := range c.Tenants.IDs() {
		t, _ := c.Tenants.Get(id)
		rows = append(rows, row{ID: id, CRM: t.CRM.Name()})
	}
	return c.render(e, http.StatusOK, "tenants", &page{Title: "Tenants", Data: rows})
}

// page is what every template gets.
type page struct {
	Title   string
	Tenant  string // the tenant whose pages these are; "" outside them
	Tab     string // the tenant tab shown
	Admin   *tenant.Admin
	Tenants []string // the tenants the admin may switch to
	CSRF    string
	Flash   *flash
	Problem string // an error in words, shown in place of (or above) the content
	Data    any
}

// render fills the page's common parts and writes the template.
func (c *Console) render(e echo.Context, status int, name string, p *page) error {
	if p.Admin == nil {
		p.Admin = admin.FromContext(e)
	}
	if s, _ := e.Get(ctxSession).(*session); s != nil && p.CSRF == "" {
		p.CSRF = s.CSRF
	}
	if p.Admin != nil {
		p.Tenants = admin.Visible(p.Admin, c.Tenants)
		if p.Flash == nil {
			p.Flash = c.takeFlash(e)
		}
	}
	if p.Tenant == "" {
		p.Tenant = e.Param("tenant")
	}
	t, ok := c.pages[name]
	if !ok {
		return fmt.Errorf("console: no template %s", name)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		c.Log.Error().Err(err).Str("template", name).Msg("console: render failed")
		return e.HTML(http.StatusInternalServerError, "<p>The console could not draw this page. The error is in calltrack's log.</p>")
	}
	return e.HTML(status, b.String())
}

// fail shows an error in words, in the console's frame.
func (c *Console) fail(e echo.Context, status int, message string) error {
	return c.render(e, status, "error", &page{Title: http.StatusText(status), Problem: message})
}

// unavailable logs a storage or upstream error and says what the admin can do.
func (c *Console) unavailable(e echo.Context, what string, err error) error {
	c.Log.Error().Err(err).Str("path", e.Request().URL.Path).Msg("console: " + what)
	return c.fail(e, http.StatusServiceUnavailable, "calltrack could not "+what+" just now (its storage did not answer). Reload the page in a moment; if it keeps failing, an operator can look at calltrack's log.")
}

// problemOf says a *web.Error (from the actions shared with the admin API) in words.
func problemOf(err error) string {
	var we *web.Error
	if errors.As(err, &we) {
		msg := we.Message
		// A sentence begins with a capital, but not a field's name ("crm_user_id is …"):
		// it is named as the admin API's body spells it.
		if first, _, _ := strings.Cut(msg, " "); msg != "" && !strings.Contains(first, "_") {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		return strings.TrimSuffix(msg, ".") + "."
	}
	return "Something went wrong; the details are in calltrack's log."
}

func (c *Console) parse() error {
	funcs := template.FuncMap{
		"path":     tenantPath,
		"ago":      ago,
		"when":     when,
		"status":   statusWords,
		"reason":   reasonWords,
		"reasonOf": unmatchedWords,
		"dur":      durationWords,
		"dur2":     spanWords,
		"plural":   plural,
		"crm":      func(kind string) string { return tenant.CRM{Kind: kind}.Name() },
		"add":      func(a, b int) int { return a + b },
		"join":     strings.Join,
		"pathEsc":  url.PathEscape,
	}
	layout, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return fmt.Errorf("console: templates: %w", err)
	}
	names, _ := fs.Glob(templateFS, "templates/*.html")
	c.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return fmt.Errorf("console: template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return nil
}
