package tenant

import (
	"fmt"
	"strings"
	"time"
)

// Match modes of user sync: how a MyOperator agent is recognised as a CRM user.
const (
	MatchEmail       = "email"    // exact, case-sensitive email (MyOperator's own rule); the default
	MatchEmailCI     = "email_ci" // email ignoring case
	MatchPhone       = "phone"    // any phone number in common (E.164)
	MatchFieldPrefix = "field:"   // field:<name>: the CRM user's field <name> holds the MyOperator user id (or uuid)
)

// DefaultSyncInterval is how often user sync runs when a tenant does not say.
const DefaultSyncInterval = 6 * time.Hour

// Sync is a tenant's user-sync settings (the tenants file's `sync:` block).
type Sync struct {
	Match           string        // see the Match* constants; default email
	Roles           []string      // when set, only CRM users with one of these roles (or profiles) are matched
	RequireApproval bool          // new automatic matches wait as pending until an admin approves them
	Interval        time.Duration // between scheduled syncs; default 6h
}

// WithDefaults fills the unset settings.
func (s Sync) WithDefaults() Sync {
	if s.Match == "" {
		s.Match = MatchEmail
	}
	if s.Interval <= 0 {
		s.Interval = DefaultSyncInterval
	}
	return s
}

// Field returns the CRM field name of a field:<name> match.
func (s Sync) Field() (string, bool) {
	f, ok := strings.CutPrefix(s.Match, MatchFieldPrefix)
	return f, ok && f != ""
}

// Validate names the first bad setting (after defaults).
func (s Sync) Validate() error {
	s = s.WithDefaults()
	switch {
	case s.Match == MatchEmail, s.Match == MatchEmailCI, s.Match == MatchPhone:
	case strings.HasPrefix(s.Match, MatchFieldPrefix):
		if _, ok := s.Field(); !ok {
			return fmt.Errorf("sync.match %q: name the field, e.g. field:MyOperator_ID", s.Match)
		}
	default:
		return fmt.Errorf("sync.match %q: use email, email_ci, phone or field:<name>", s.Match)
	}
	if s.Interval < time.Minute {
		return fmt.Errorf("sync.interval %s: at least 1m", s.Interval)
	}
	for _, r := range s.Roles {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("sync.roles: empty role name")
		}
	}
	return nil
}

// syncYAML is the tenants file's `sync:` block.
type syncYAML struct {
	Match           string   `yaml:"match"`
	Roles           []string `yaml:"roles"`
	RequireApproval bool     `yaml:"require_approval"`
	Interval        string   `yaml:"interval"`
}

func (y syncYAML) parse() (Sync, error) {
	s := Sync{Match: strings.TrimSpace(y.Match), Roles: y.Roles, RequireApproval: y.RequireApproval}
	if y.Interval != "" {
		d, err := time.ParseDuration(y.Interval)
		if err != nil {
			return s, fmt.Errorf("sync.interval %q: %w", y.Interval, err)
		}
		s.Interval = d
	}
	s = s.WithDefaults()
	return s, s.Validate()
}
