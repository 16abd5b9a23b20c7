package usersync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/usermatch"
)

// ErrNoReport means no sync has run for the tenant yet.
var ErrNoReport = errors.New("usersync: no sync has run yet")

// Report is what the last sync of a tenant found and did.
type Report struct {
	Tenant     string                `json:"tenant"`
	LastSyncAt *time.Time            `json:"last_sync_at"` // nil until a sync succeeded
	DurationMS int64                 `json:"duration_ms"`
	Match      string                `json:"match"` // the match mode used
	Users      UserCounts            `json:"users"`
	Matched    []Matched             `json:"matched"`
	Unmatched  []usermatch.Unmatched `json:"unmatched"`
	Changes    []Change              `json:"changes"`
	Warnings   []string              `json:"warnings,omitempty"`
	LastError  *Failure              `json:"last_error,omitempty"` // the latest attempt failed (the rest is from the last good sync)
}

// UserCounts is how many users each side listed.
type UserCounts struct {
	MyOperator int `json:"myoperator"`
	CRM        int `json:"crm"`
}

// Matched is a mapping in force (automatic or manual; active, pending or suspended).
type Matched struct {
	MyOperatorUserID string `json:"myoperator_user_id"`
	CRMUserID        string `json:"crm_user_id"`
	Email            string `json:"email"`
	Source           string `json:"source"`
	Status           string `json:"status"`
	Name             string `json:"name,omitempty"`
}

// Change is one change the sync made.
type Change struct {
	MyOperatorUserID string `json:"myoperator_user_id"`
	Change           string `json:"change"` // added, updated, removed, suspended, resumed
	CRMUserID        string `json:"crm_user_id,omitempty"`
	Status           string `json:"status,omitempty"`
	Detail           string `json:"detail,omitempty"`
}

// Failure is a sync attempt that failed.
type Failure struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

func matchedOf(ms []call.Mapping) []Matched {
	out := make([]Matched, 0, len(ms))
	for _, m := range ms {
		out = append(out, Matched{MyOperatorUserID: m.MyOperatorUserID, CRMUserID: m.CRMUserID, Email: m.Email,
			Source: m.Source, Status: m.Status, Name: m.Name})
	}
	return out
}

// withCurrent refreshes the report's matched list from the mappings in force now and
// drops unmatched users a mapping has covered since (an admin mapped them by hand,
// or approved them).
func (r *Report) withCurrent(ms []call.Mapping) {
	r.Matched = matchedOf(ms)
	agents, crmUsers := map[string]bool{}, map[string]bool{}
	for _, m := range ms {
		agents[m.MyOperatorUserID], crmUsers[m.CRMUserID] = true, true
	}
	kept := r.Unmatched[:0]
	for _, u := range r.Unmatched {
		if (u.Side == usermatch.SideMyOperator && agents[u.ID]) || (u.Side == usermatch.SideCRM && crmUsers[u.ID]) {
			continue
		}
		kept = append(kept, u)
	}
	r.Unmatched = kept
}

func (s *Service) reportKey(tenant string) string {
	return fmt.Sprintf("%s:sync:{%s}:report", s.Prefix, tenant)
}

func (s *Service) saveReport(ctx context.Context, r *Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.Redis.Set(ctx, s.reportKey(r.Tenant), b, 0).Err(); err != nil {
		return fmt.Errorf("usersync: save report: %w", err)
	}
	return nil
}

func (s *Service) loadReport(ctx context.Context, tenant string) (*Report, error) {
	b, err := s.Redis.Get(ctx, s.reportKey(tenant)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoReport
	}
	if err != nil {
		return nil, fmt.Errorf("usersync: load report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("usersync: decode report: %w", err)
	}
	return &r, nil
}

// Report returns the tenant's last sync report, its matched list as of now.
func (s *Service) Report(ctx context.Context, tenant string) (*Report, error) {
	r, err := s.loadReport(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if r.LastSyncAt == nil {
		// Only failed attempts so far.
		return r, nil
	}
	ms, err := s.Mappings.List(ctx, tenant)
	if err != nil {
		return nil, err
	}
	r.withCurrent(ms)
	return r, nil
}
