package popup

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/crm/zoho"
	"github.com/calltrack/calltrack/internal/directory"
)

// PhoneBridgeUsers maps a CRM user to its PhoneBridge user id (callnotify's
// zohouser), as the PhoneBridge setup recorded it.
type PhoneBridgeUsers interface {
	PhoneBridgeUser(ctx context.Context, crmUserID string) (string, bool, error)
}

// ErrNoPhoneBridgeUser: the owner has no PhoneBridge user with click-to-dial
// registered — run `calltrack zoho phonebridge setup` (or the admin endpoint).
var ErrNoPhoneBridgeUser = errors.New("popup: the owner has no PhoneBridge user; run the PhoneBridge setup for the tenant")

// PhoneBridgeStore keeps a tenant's CRM user → PhoneBridge user map in Redis
// (<prefix>:phonebridge:<tenant>, a hash), written by the setup and read by the
// notifier of every replica.
type PhoneBridgeStore struct {
	Redis  redis.UniversalClient
	Prefix string
	Tenant string
}

func (s PhoneBridgeStore) key() string { return s.Prefix + ":phonebridge:" + s.Tenant }

// PhoneBridgeUser implements PhoneBridgeUsers.
func (s PhoneBridgeStore) PhoneBridgeUser(ctx context.Context, crmUserID string) (string, bool, error) {
	v, err := s.Redis.HGet(ctx, s.key(), crmUserID).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, err
}

// Replace stores the map whole (CRM user id → PhoneBridge user id).
func (s PhoneBridgeStore) Replace(ctx context.Context, m map[string]string) error {
	_, err := s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.key())
		if len(m) > 0 {
			p.HSet(ctx, s.key(), m)
		}
		return nil
	})
	return err
}

// All returns the stored map.
func (s PhoneBridgeStore) All(ctx context.Context) (map[string]string, error) {
	return s.Redis.HGetAll(ctx, s.key()).Result()
}

// PhoneBridgeAPI is what the setup asks of Zoho (*zoho.Adapter).
type PhoneBridgeAPI interface {
	IntegratePhoneBridge(ctx context.Context) error
	PhoneBridgeUsers(ctx context.Context) ([]zoho.PhoneBridgeUser, error)
	RegisterClickToDial(ctx context.Context, zohouser, uri, authParam string) error
}

// SetupReport says what the PhoneBridge setup did.
type SetupReport struct {
	Integrated  bool              `json:"integrated"`
	ClickToDial string            `json:"clicktodial_uri"`
	Users       []SetupUser       `json:"users"`    // PhoneBridge users and their fate
	Unmapped    []directory.User  `json:"unmapped"` // active CRM users with no PhoneBridge user
	Mapped      int               `json:"mapped"`   // PhoneBridge users mapped and registered
	Failed      int               `json:"failed"`   // registrations that failed
	byCRM       map[string]string // CRM user → PhoneBridge user, registered
}

// SetupUser is one PhoneBridge user in the report.
type SetupUser struct {
	PhoneBridgeID string `json:"zohouser"`
	Email         string `json:"email,omitempty"`
	CRMUserID     string `json:"crm_user_id,omitempty"`
	Status        string `json:"status"` // registered, no_crm_user, failed: <error>
}

// SetupPhoneBridge makes calltrack the org's PhoneBridge provider, maps each
// PhoneBridge user to the CRM user with the same email (case-insensitive), registers
// callbackURI as the click-to-dial URI of each mapped user (which enables their
// notifications) and stores the map for the notifier. It is safe to run again (after
// users change); the map is replaced by what this run registered.
func SetupPhoneBridge(ctx context.Context, api PhoneBridgeAPI, crmUsers directory.Source, store PhoneBridgeStore,
	callbackURI, authParam string) (SetupReport, error) {
	r := SetupReport{ClickToDial: callbackURI, byCRM: map[string]string{}}
	if callbackURI == "" {
		return r, errors.New("phonebridge setup: no click-to-dial URI (crm.clicktodial_uri, or CALLTRACK_PUBLIC_URL)")
	}
	if err := api.IntegratePhoneBridge(ctx); err != nil {
		return r, fmt.Errorf("phonebridge setup: integrate: %w", err)
	}
	r.Integrated = true
	pbUsers, err := api.PhoneBridgeUsers(ctx)
	if err != nil {
		return r, fmt.Errorf("phonebridge setup: list PhoneBridge users: %w", err)
	}
	users, err := crmUsers.Users(ctx)
	if err != nil {
		return r, fmt.Errorf("phonebridge setup: list CRM users: %w", err)
	}
	byEmail := map[string]directory.User{}
	for _, u := range users {
		if u.Active && u.Email != "" {
			byEmail[strings.ToLower(u.Email)] = u
		}
	}
	matched := map[string]bool{}
	for _, pb := range pbUsers {
		su := SetupUser{PhoneBridgeID: pb.ID, Email: pb.Email}
		u, ok := byEmail[strings.ToLower(pb.Email)]
		switch {
		case pb.Email == "" || !ok:
			su.Status = "no_crm_user"
		default:
			su.CRMUserID = u.ID
			matched[u.ID] = true
			if err := api.RegisterClickToDial(ctx, pb.ID, callbackURI, authParam); err != nil {
				su.Status = "failed: " + err.Error()
				r.Failed++
			} else {
				su.Status = "registered"
				r.byCRM[u.ID] = pb.ID
				r.Mapped++
			}
		}
		r.Users = append(r.Users, su)
	}
	for _, u := range users {
		if u.Active && !matched[u.ID] {
			r.Unmapped = append(r.Unmapped, u)
		}
	}
	if err := store.Replace(ctx, r.byCRM); err != nil {
		return r, fmt.Errorf("phonebridge setup: store the user map: %w", err)
	}
	return r, nil
}
