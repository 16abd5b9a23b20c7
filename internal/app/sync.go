package app

import (
	"context"
	"fmt"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/latebind"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/usersync"
)

// RedriveInterval is how often `work` re-publishes parked calls whose agent has been
// mapped since, whatever triggers were missed.
const RedriveInterval = 30 * time.Second

// wireSync makes the mapping store durable and late-binding: every change goes to
// the journal topic before Redis, and a new active mapping re-publishes the parked
// calls it can now attribute. It also builds the user sync service.
func (a *App) wireSync() {
	a.Redrive = &latebind.Redriver{State: a.State, Parking: a.Parking, Mappings: a.Mappings, Tenants: a.Tenants,
		Trace: a.Trace, Publisher: a.Producer, Topics: a.Topics, Log: a.Log}
	a.Mappings.WithJournal(mapping.KafkaJournal{Publisher: a.Producer, Topic: a.Topics.Mapping}).
		OnChange(func(tenant, _ string, m *call.Mapping) {
			if m != nil && m.Status == call.MappingActive {
				a.Redrive.Trigger(tenant)
			}
		})
	// Closers run in reverse: triggered redrives end before the producer and Redis close.
	a.closers = append(a.closers, func() error { a.Redrive.Close(); return nil })
	a.UserSync = &usersync.Service{Tenants: a.Tenants, Mappings: a.Mappings, Redis: a.Redis, Prefix: a.Cfg.RedisPrefix,
		Sources: a.userSources, Metrics: a.Metrics.UserSync, Log: a.Log}
}

// userSources returns a tenant's MyOperator and CRM user directories.
func (a *App) userSources(t *tenant.Tenant) (directory.Source, directory.Source, error) {
	if t.MyOperatorKey.Reveal() == "" {
		return nil, nil, fmt.Errorf("%w: tenant %s has no MyOperator API token (myoperator_api_token_env)", usersync.ErrNotConfigured, t.ID)
	}
	// A CRM adapter that can list its users (Kylas, Zoho) is the CRM's directory.
	ad, err := a.Adapters(t)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", usersync.ErrNotConfigured, err)
	}
	if u, ok := ad.(interface{ Unwrap() crm.Adapter }); ok {
		ad = u.Unwrap() // the metered wrapper (crm.go)
	}
	users, ok := ad.(directory.Source)
	if !ok {
		return nil, nil, fmt.Errorf("%w: CRM kind %q has no users source", usersync.ErrNotConfigured, t.CRM.Kind)
	}
	return moapi.New(t.MyOperatorAPI, t.MyOperatorKey.Reveal()), users, nil
}

// registerSync mounts user sync's admin routes (report, sync now, approve) behind
// the admin API's auth.
func (a *App) registerSync(e *echo.Echo, adm interface {
	RequireAdmin(echo.HandlerFunc) echo.HandlerFunc
}) {
	(&usersync.API{Service: a.UserSync, Log: a.Log}).Register(e.Group("/admin/v1", adm.RequireAdmin))
}

// RunSync runs the user-sync scheduler until ctx ends: a sync of every tenant at
// start, then every interval (each tenant's sync.interval when interval is 0).
func (a *App) RunSync(ctx context.Context, interval time.Duration) error {
	return (&usersync.Scheduler{Service: a.UserSync, Interval: interval}).Run(ctx)
}

// RunRedrive re-publishes parked calls of every tenant whose agent is mapped now,
// every RedriveInterval, until ctx ends.
func (a *App) RunRedrive(ctx context.Context) error {
	return a.Redrive.Run(ctx, RedriveInterval, a.Tenants.IDs)
}

// RebuildMappings restores the mappings in Redis from the journal topic (only the
// given tenants when any are named).
func (a *App) RebuildMappings(ctx context.Context, only ...string) (mapping.RebuildStats, error) {
	return mapping.Rebuild(ctx, a.Kafka, a.Topics.Mapping, a.Mappings, only...)
}
