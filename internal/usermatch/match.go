// Package usermatch is user sync's decision, with no I/O: given the MyOperator users,
// the CRM users, the tenant's sync settings and the stored mappings, Match plans the
// mapping changes (by email by default, exact and case-sensitive as MyOperator does; or
// ignoring case, by phone, or by a CRM field) and lists every user it could not match
// with the reason. internal/usersync applies the plan.
package usermatch

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/tenant"
)

// Sides of an unmatched user.
const (
	SideMyOperator = "myoperator"
	SideCRM        = "crm"
)

// Reasons a user is not matched.
const (
	ReasonNoMatch          = "no_match"           // no user on the other side has the key
	ReasonEmailCaseDiffers = "email_case_differs" // a user on the other side has the email in another case
	ReasonInactive         = "inactive"           // the user is deactivated on its side
	ReasonDuplicateEmail   = "duplicate_email"    // the email is not unique: ambiguous
	ReasonNoEmail          = "no_email"           // the user has no email
	ReasonRoleFiltered     = "role_filtered"      // the CRM user's role is not in sync.roles
	ReasonCounterpartOff   = "counterpart_inactive"
	ReasonCounterpartRole  = "counterpart_role_filtered"
	ReasonDuplicatePhone   = "duplicate_phone"
	ReasonNoPhone          = "no_phone"
	ReasonDuplicateField   = "duplicate_field"
	ReasonNoField          = "no_field"
	// ReasonMappingConflict: the agent matched, but its email, phone or uuid was already
	// another agent's mapping's and the mapping was refused. Only reports of older
	// versions have it: a sync now stores the mapping and leaves such a value to the
	// other agent, with a warning (mapping.Store.UpdateLeaving).
	ReasonMappingConflict = "mapping_conflict"
)

// Kinds of change a sync makes.
const (
	ChangeAdded     = "added"
	ChangeUpdated   = "updated"
	ChangeRemoved   = "removed"
	ChangeSuspended = "suspended"
	ChangeResumed   = "resumed"
)

// Actor is who user sync's changes are recorded as (the journal's audit trail).
const Actor = "sync"

// Unmatched is a user the sync could not match, and why.
type Unmatched struct {
	Side        string       `json:"side"` // myoperator | crm
	ID          string       `json:"id"`
	Email       string       `json:"email"`
	Name        string       `json:"name,omitempty"`
	Reason      string       `json:"reason"`
	Detail      string       `json:"detail,omitempty"`      // for the admin: what to do about it
	Counterpart *Counterpart `json:"counterpart,omitempty"` // the near-match on the other side, if any
}

// Counterpart names the user on the other side an unmatched user nearly matched.
type Counterpart struct {
	Side  string `json:"side"`
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Op is one planned change of a mapping. It applies only if the agent's mapping is
// still Base when applied (an admin may have changed it meanwhile).
type Op struct {
	UserID string
	Kind   string        // ChangeAdded, ...
	Base   *call.Mapping // the mapping the op was planned from; nil: none
	Next   *call.Mapping // nil: remove
	Detail string
}

// Input is one matching round's data.
type Input struct {
	Settings   tenant.Sync
	MyOperator []directory.User
	CRM        []directory.User
	Existing   []call.Mapping
	Now        time.Time
}

// Plan is what a matching round decided.
type Plan struct {
	Ops       []Op
	Unmatched []Unmatched
	Warnings  []string
}

// keyer extracts the match keys of a user on each side.
type keyer struct {
	mode, field          string
	noKey, duplicate, by string // reasons and the source of a match in this mode
}

func newKeyer(s tenant.Sync) keyer {
	switch {
	case s.Match == tenant.MatchPhone:
		return keyer{mode: s.Match, noKey: ReasonNoPhone, duplicate: ReasonDuplicatePhone, by: call.MappingPhoneMatch}
	case strings.HasPrefix(s.Match, tenant.MatchFieldPrefix):
		f, _ := s.Field()
		return keyer{mode: tenant.MatchFieldPrefix, field: f, noKey: ReasonNoField, duplicate: ReasonDuplicateField, by: call.MappingFieldMatch}
	case s.Match == tenant.MatchEmailCI:
		return keyer{mode: s.Match, noKey: ReasonNoEmail, duplicate: ReasonDuplicateEmail, by: call.MappingEmailMatch}
	default:
		return keyer{mode: tenant.MatchEmail, noKey: ReasonNoEmail, duplicate: ReasonDuplicateEmail, by: call.MappingEmailMatch}
	}
}

func (k keyer) keys(u directory.User, side string) []string {
	var out []string
	add := func(v string) {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	switch k.mode {
	case tenant.MatchEmail:
		add(u.Email)
	case tenant.MatchEmailCI:
		add(strings.ToLower(u.Email))
	case tenant.MatchPhone:
		for _, p := range u.Phones {
			add(p)
		}
	case tenant.MatchFieldPrefix:
		if side == SideMyOperator {
			add(u.ID)
			add(u.Fields["uuid"])
		} else {
			add(field(u, k.field))
		}
	}
	return out
}

// field reads a CRM user's field by name, ignoring case as a fallback (API field
// names are spelled differently in UIs).
func field(u directory.User, name string) string {
	if v, ok := u.Fields[name]; ok {
		return v
	}
	for k, v := range u.Fields {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func roleAllowed(u directory.User, roles []string) bool {
	if len(roles) == 0 {
		return true
	}
	for _, r := range roles {
		if strings.EqualFold(strings.TrimSpace(r), u.Role) || (u.Profile != "" && strings.EqualFold(strings.TrimSpace(r), u.Profile)) {
			return true
		}
	}
	return false
}

// index maps a key to the users that have it.
type index map[string][]directory.User

func (ix index) add(key string, u directory.User) {
	if !slices.ContainsFunc(ix[key], func(x directory.User) bool { return x.ID == u.ID }) {
		ix[key] = append(ix[key], u)
	}
}

// Match matches the two user lists and plans the changes of the stored mappings:
//   - manual mappings win: their agents are not matched automatically; a manual
//     mapping whose CRM user is listed deactivated is suspended, and resumed when the
//     user is active again; a CRM user merely absent leaves it alone;
//   - an agent matched to exactly one eligible CRM user gets an automatic mapping
//     (pending when the tenant requires approval), updated when names, emails,
//     phones or the CRM user change;
//   - an automatic mapping whose agent no longer matches (deactivated or deleted on
//     either side, or ambiguous) is removed.
func Match(in Input) Plan {
	s := in.Settings.WithDefaults()
	k := newKeyer(s)
	var p Plan
	if in.Now.IsZero() {
		in.Now = time.Now().UTC()
	}

	manual, auto := map[string]*call.Mapping{}, map[string]*call.Mapping{}
	for i := range in.Existing {
		m := &in.Existing[i]
		if m.Automatic() {
			auto[m.MyOperatorUserID] = m
		} else {
			manual[m.MyOperatorUserID] = m
		}
	}
	moByID := map[string]directory.User{}
	for _, u := range in.MyOperator {
		moByID[u.ID] = u
	}
	crmByID := map[string]directory.User{}
	for _, u := range in.CRM {
		crmByID[u.ID] = u
	}

	// Indexes of the users that can take part in a match, and of the others (near
	// misses worth telling the admin about).
	moIx, moOff, crmIx, crmOff := index{}, index{}, index{}, index{}
	moLower, crmLower := index{}, index{} // exact-email mode: emails ignoring case
	caseSensitive := k.mode == tenant.MatchEmail
	for _, u := range in.MyOperator {
		if manual[u.ID] != nil {
			continue
		}
		for _, key := range k.keys(u, SideMyOperator) {
			if u.Active {
				moIx.add(key, u)
				if caseSensitive {
					moLower.add(strings.ToLower(key), u)
				}
			} else {
				moOff.add(key, u)
			}
		}
	}
	for _, u := range in.CRM {
		for _, key := range k.keys(u, SideCRM) {
			if u.Active && roleAllowed(u, s.Roles) {
				crmIx.add(key, u)
				if caseSensitive {
					crmLower.add(strings.ToLower(key), u)
				}
			} else {
				crmOff.add(key, u)
			}
		}
	}

	unmatched := func(side string, u directory.User, reason, detail string, cp *directory.User, cpSide string) {
		um := Unmatched{Side: side, ID: u.ID, Email: u.Email, Name: u.Name, Reason: reason, Detail: detail}
		if cp != nil {
			um.Counterpart = &Counterpart{Side: cpSide, ID: cp.ID, Email: cp.Email}
		}
		p.Unmatched = append(p.Unmatched, um)
	}

	// MyOperator side: who matches whom.
	desired := map[string]directory.User{} // agent id → CRM user
	why := map[string]string{}             // agent id → why it is not matched (for removals)
	for _, u := range sortedUsers(in.MyOperator) {
		if manual[u.ID] != nil {
			continue
		}
		keys := k.keys(u, SideMyOperator)
		switch {
		case !u.Active:
			unmatched(SideMyOperator, u, ReasonInactive, "the MyOperator user is disabled", nil, "")
			why[u.ID] = "the MyOperator user is disabled"
			continue
		case len(keys) == 0:
			unmatched(SideMyOperator, u, k.noKey, "nothing to match on: "+k.describe(), nil, "")
			why[u.ID] = "the MyOperator user has no " + k.describe()
			continue
		}
		var cands []directory.User
		dupMO := ""
		for _, key := range keys {
			for _, c := range crmIx[key] {
				if !slices.ContainsFunc(cands, func(x directory.User) bool { return x.ID == c.ID }) {
					cands = append(cands, c)
				}
			}
			if others := moIx[key]; len(others) > 1 {
				dupMO = key
			}
		}
		switch {
		case dupMO != "":
			unmatched(SideMyOperator, u, k.duplicate, fmt.Sprintf("%d MyOperator users have %q; map them by hand", len(moIx[dupMO]), dupMO), nil, "")
			why[u.ID] = "its " + k.describe() + " is shared by several MyOperator users"
		case len(cands) == 1:
			desired[u.ID] = cands[0]
		case len(cands) > 1:
			unmatched(SideMyOperator, u, k.duplicate, fmt.Sprintf("%d CRM users (%s) match; map the agent by hand", len(cands), ids(cands)), nil, "")
			why[u.ID] = "several CRM users match it"
		default:
			reason, detail, cp := k.nearMiss(keys, crmLower, crmOff, SideCRM)
			if caseSensitive && cp != nil && reason == ReasonEmailCaseDiffers {
				detail = fmt.Sprintf("CRM user %s has %q, which differs from %q only in case (MyOperator matches emails case-sensitively): "+
					"correct one of them, map the agent by hand, or set sync.match: email_ci", cp.ID, cp.Email, u.Email)
			}
			unmatched(SideMyOperator, u, reason, detail, cp, SideCRM)
			why[u.ID] = "no CRM user matches it any more"
			if reason == ReasonCounterpartOff {
				why[u.ID] = fmt.Sprintf("CRM user %s is deactivated", cp.ID)
			}
		}
	}

	// CRM side: who is left over. A CRM user some mapping points at is accounted for.
	targeted := map[string]bool{}
	for _, c := range desired {
		targeted[c.ID] = true
	}
	for _, m := range manual {
		targeted[m.CRMUserID] = true
	}
	for _, u := range sortedUsers(in.CRM) {
		if targeted[u.ID] {
			continue
		}
		keys := k.keys(u, SideCRM)
		switch {
		case !u.Active:
			unmatched(SideCRM, u, ReasonInactive, "the CRM user is deactivated", nil, "")
			continue
		case !roleAllowed(u, s.Roles):
			unmatched(SideCRM, u, ReasonRoleFiltered, fmt.Sprintf("role %q is not in sync.roles %v", u.Role, s.Roles), nil, "")
			continue
		case len(keys) == 0:
			unmatched(SideCRM, u, k.noKey, "nothing to match on: "+k.describe(), nil, "")
			continue
		}
		reason, detail, cp := "", "", (*directory.User)(nil)
		for _, key := range keys {
			if n := len(crmIx[key]); n > 1 {
				reason, detail = k.duplicate, fmt.Sprintf("%d CRM users have %q", n, key)
				break
			}
			if n := len(moIx[key]); n > 1 {
				reason, detail = k.duplicate, fmt.Sprintf("%d MyOperator users have %q", n, key)
				break
			}
		}
		if reason == "" {
			reason, detail, cp = k.nearMiss(keys, moLower, moOff, SideMyOperator)
			if caseSensitive && cp != nil && reason == ReasonEmailCaseDiffers {
				detail = fmt.Sprintf("MyOperator user %s has %q, which differs from %q only in case", cp.ID, cp.Email, u.Email)
			}
		}
		unmatched(SideCRM, u, reason, detail, cp, SideMyOperator)
	}

	p.Ops = plan(in, s, k, desired, manual, auto, moByID, crmByID, why, &p)
	return p
}

// nearMiss explains why keys found no match on the other side: the same email in
// another case, a deactivated (or filtered) user with the key, or nothing at all.
func (k keyer) nearMiss(keys []string, lower, off index, side string) (string, string, *directory.User) {
	otherSide := sideName(side)
	for _, key := range keys {
		if hits := lower[strings.ToLower(key)]; len(hits) > 0 && k.mode == tenant.MatchEmail {
			c := hits[0]
			return ReasonEmailCaseDiffers, "", &c
		}
	}
	for _, key := range keys {
		if hits := off[key]; len(hits) > 0 {
			c := hits[0]
			if c.Active { // listed off because of the role filter
				return ReasonCounterpartRole, fmt.Sprintf("%s user %s has it but its role %q is filtered out", otherSide, c.ID, c.Role), &c
			}
			return ReasonCounterpartOff, fmt.Sprintf("%s user %s has it but is deactivated", otherSide, c.ID), &c
		}
	}
	return ReasonNoMatch, fmt.Sprintf("no %s user has the same %s", otherSide, k.describe()), nil
}

func sideName(side string) string {
	if side == SideCRM {
		return "CRM"
	}
	return "MyOperator"
}

func (k keyer) describe() string {
	switch k.mode {
	case tenant.MatchPhone:
		return "phone number"
	case tenant.MatchFieldPrefix:
		return "field " + k.field + " (MyOperator user id or uuid)"
	case tenant.MatchEmailCI:
		return "email (ignoring case)"
	}
	return "email"
}

// plan turns the matches into changes of the stored mappings.
func plan(in Input, s tenant.Sync, k keyer, desired map[string]directory.User, manual, auto map[string]*call.Mapping,
	moByID, crmByID map[string]directory.User, why map[string]string, p *Plan) []Op {
	var ops []Op
	for _, id := range slices.Sorted(maps.Keys(desired)) {
		c, u := desired[id], moByID[id]
		next := &call.Mapping{MyOperatorUserID: id, MyOperatorUUID: u.Fields["uuid"], CRMUserID: c.ID, Email: strings.TrimSpace(u.Email),
			Phones: e164Only(u.Phones), Name: c.Name, Source: k.by, Status: call.MappingActive, UpdatedAt: in.Now, UpdatedBy: Actor}
		if next.Name == "" {
			next.Name = u.Name
		}
		cur := auto[id]
		if cur == nil {
			if s.RequireApproval {
				next.Status = call.MappingPending
			}
			ops = append(ops, Op{UserID: id, Kind: ChangeAdded, Next: next, Detail: fmt.Sprintf("matched CRM user %s by %s", c.ID, k.describe())})
			continue
		}
		var diffs []string
		switch {
		case cur.CRMUserID != c.ID:
			diffs = append(diffs, fmt.Sprintf("CRM user %s → %s", cur.CRMUserID, c.ID))
			if s.RequireApproval {
				next.Status = call.MappingPending
			}
		case cur.Status == call.MappingPending && s.RequireApproval:
			next.Status = call.MappingPending
		case cur.Status == call.MappingPending:
			diffs = append(diffs, "approval no longer required")
		}
		if cur.Email != next.Email {
			diffs = append(diffs, fmt.Sprintf("email %q → %q", cur.Email, next.Email))
		}
		if cur.Name != next.Name {
			diffs = append(diffs, fmt.Sprintf("name %q → %q", cur.Name, next.Name))
		}
		if !slices.Equal(cur.Phones, next.Phones) {
			diffs = append(diffs, "phone numbers changed")
		}
		if cur.MyOperatorUUID != next.MyOperatorUUID {
			diffs = append(diffs, "uuid changed")
		}
		if cur.Source != next.Source {
			diffs = append(diffs, fmt.Sprintf("source %s → %s", cur.Source, next.Source))
		}
		if cur.Status != next.Status && len(diffs) == 0 {
			diffs = append(diffs, "status "+cur.Status+" → "+next.Status)
		}
		if len(diffs) > 0 {
			ops = append(ops, Op{UserID: id, Kind: ChangeUpdated, Base: cur, Next: next, Detail: strings.Join(diffs, "; ")})
		}
	}
	// An empty list from one side is more likely an outage or a wrong token than
	// everyone leaving: removing every mapping on it would stop all attribution.
	emptySide := ""
	switch {
	case len(in.MyOperator) == 0:
		emptySide = "MyOperator"
	case len(in.CRM) == 0:
		emptySide = "the CRM"
	}
	for _, id := range slices.Sorted(maps.Keys(auto)) {
		if _, ok := desired[id]; ok {
			continue
		}
		if emptySide != "" {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s listed no users: automatic mapping of %s kept", emptySide, id))
			continue
		}
		detail := why[id]
		if detail == "" {
			detail = "the agent is no longer in MyOperator's user list"
		}
		ops = append(ops, Op{UserID: id, Kind: ChangeRemoved, Base: auto[id], Detail: detail})
	}
	for _, id := range slices.Sorted(maps.Keys(manual)) {
		m := manual[id]
		c, listed := crmByID[m.CRMUserID]
		if !listed {
			continue // absent from the list: leave it to the admin
		}
		next := *m
		next.UpdatedAt, next.UpdatedBy = in.Now, Actor
		switch {
		case !c.Active && m.Status != call.MappingSuspended:
			next.Status = call.MappingSuspended
			ops = append(ops, Op{UserID: id, Kind: ChangeSuspended, Base: m, Next: &next,
				Detail: fmt.Sprintf("CRM user %s is deactivated; the manual mapping resumes when it is active again", c.ID)})
		case c.Active && m.Status == call.MappingSuspended:
			next.Status = call.MappingActive
			ops = append(ops, Op{UserID: id, Kind: ChangeResumed, Base: m, Next: &next, Detail: fmt.Sprintf("CRM user %s is active again", c.ID)})
		}
	}
	return ops
}

func e164Only(ps []string) []string {
	var out []string
	for _, p := range ps {
		if strings.HasPrefix(p, "+") && len(p) >= 8 && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func ids(us []directory.User) string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return strings.Join(out, ", ")
}

func sortedUsers(us []directory.User) []directory.User {
	out := slices.Clone(us)
	slices.SortStableFunc(out, func(a, b directory.User) int { return strings.Compare(a.ID, b.ID) })
	return out
}
