package tenant

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/call"
)

// Action is what a call policy does with a call of its category.
type Action string

// Actions of a call policy (the tenants file's `policies:` values).
const (
	ActionLog        Action = "log"          // write the call record (the default)
	ActionLogAndTask Action = "log_and_task" // write the record and a follow-up task for its owner
	ActionSkip       Action = "skip"         // write nothing to the CRM (the trace says why)
)

// Category is the kind of call a policy applies to.
type Category string

// Categories of the tenants file's `policies:` keys. Answered customer calls have no
// policy: they are always logged.
const (
	CategoryMissed             Category = "missed"              // an incoming call nobody answered
	CategoryVoicemail          Category = "voicemail"           // an incoming call that left a voicemail
	CategoryUnansweredOutgoing Category = "unanswered_outgoing" // an agent's call the customer did not answer
	CategoryInternal           Category = "internal"            // the other party is one of the tenant's agents
	CategoryOutOfHours         Category = "out_of_hours"        // an unanswered incoming call outside business hours
)

// Categories lists every policy key, in the order of precedence (docs: README, Call policies).
var Categories = []Category{CategoryInternal, CategoryOutOfHours, CategoryMissed, CategoryVoicemail, CategoryUnansweredOutgoing}

// DefaultTaskDue is how long after a call its follow-up task falls due when the tenant
// does not say (task_due).
const DefaultTaskDue = 2 * time.Hour

// CallPolicy is a tenant's per-category policy, business hours, follow-up task
// settings and department fallback owners.
type CallPolicy struct {
	// Actions by category; a category absent here is logged. out_of_hours is only
	// ever present when set explicitly (and business_hours is then set too).
	Actions       map[Category]Action
	BusinessHours *BusinessHours // nil: no business hours (out_of_hours never applies)
	TaskDue       time.Duration  // a follow-up task is due this long after the call ended
	// Departments maps a MyOperator department name (lower case) to the CRM user id
	// who owns its calls when the agent is not mapped or no agent was rung.
	Departments map[string]string
}

// Action returns the action of category c (log when the tenant set none).
func (p CallPolicy) Action(c Category) (Action, bool) {
	a, ok := p.Actions[c]
	if !ok {
		return ActionLog, false
	}
	return a, true
}

// DepartmentOwner returns the fallback owner of department name (matched ignoring
// case and surrounding spaces), if the tenant names one.
func (p CallPolicy) DepartmentOwner(name string) (string, bool) {
	id, ok := p.Departments[strings.ToLower(strings.TrimSpace(name))]
	return id, ok && id != ""
}

// FallbackOwnerOf returns the owner of call l when no mapped agent owns it (its agent
// is not mapped, or no agent was rung): its department's owner (departments:) when
// the tenant names one, else the tenant's fallback_owner, else nil (the call is
// parked until a mapping appears).
func (t *Tenant) FallbackOwnerOf(l *call.Log) *call.Owner {
	if id, ok := t.Calls.DepartmentOwner(l.Department); ok {
		return &call.Owner{CRMUserID: id, Source: call.OwnerDepartment}
	}
	if t.FallbackOwner != "" {
		return &call.Owner{CRMUserID: t.FallbackOwner, Source: call.OwnerFallback}
	}
	return nil
}

// BusinessHours are a tenant's opening hours in its time zone, per weekday; a day with
// no ranges is closed.
type BusinessHours struct {
	Location *time.Location
	Days     [7][]Range // by time.Weekday
}

// Range is [From, To) in minutes after local midnight; To may be 24*60.
type Range struct{ From, To int }

// Open reports whether t falls within the business hours.
func (b *BusinessHours) Open(t time.Time) bool {
	lt := t.In(b.Location)
	m := lt.Hour()*60 + lt.Minute()
	for _, r := range b.Days[lt.Weekday()] {
		if m >= r.From && m < r.To {
			return true
		}
	}
	return false
}

// policyYAML is the tenants file's call-policy keys of one tenant.
type policyYAML struct {
	Policies      map[string]string `yaml:"policies"`
	BusinessHours map[string]string `yaml:"business_hours"`
	TaskDue       string            `yaml:"task_due"`
	Departments   map[string]string `yaml:"departments"`
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// parse validates the call policy of tenant id; every error names the tenant and key.
func (y policyYAML) parse(id string) (CallPolicy, error) {
	bad := func(format string, args ...any) (CallPolicy, error) {
		return CallPolicy{}, fmt.Errorf("tenants file: tenant %s: "+format, append([]any{id}, args...)...)
	}
	p := CallPolicy{Actions: map[Category]Action{}, TaskDue: DefaultTaskDue}
	known := make([]string, 0, len(Categories))
	for _, c := range Categories {
		known = append(known, string(c))
	}
	for _, k := range sortedKeys(y.Policies) {
		v := strings.TrimSpace(y.Policies[k])
		c := Category(k)
		if !isCategory(c) {
			return bad("policies.%s: unknown call category (use %s)", k, strings.Join(known, ", "))
		}
		a := Action(v)
		switch a {
		case ActionLog, ActionLogAndTask, ActionSkip:
		default:
			return bad("policies.%s %q: use log (the default), log_and_task or skip", k, v)
		}
		if c == CategoryInternal && a == ActionLogAndTask {
			return bad("policies.internal log_and_task: an internal call has no customer to call back; use log or skip")
		}
		p.Actions[c] = a
	}
	if len(y.BusinessHours) > 0 {
		bh := &BusinessHours{}
		zone := strings.TrimSpace(y.BusinessHours["time_zone"])
		if zone == "" {
			return bad("business_hours.time_zone is required (an IANA zone such as Asia/Kolkata)")
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return bad("business_hours.time_zone %q: not an IANA time zone (e.g. Asia/Kolkata): %v", zone, err)
		}
		bh.Location = loc
		open := false
		for _, k := range sortedKeys(y.BusinessHours) {
			if k == "time_zone" {
				continue
			}
			day, ok := weekdays[strings.ToLower(k)]
			if !ok {
				return bad("business_hours.%s: unknown key (time_zone, mon, tue, wed, thu, fri, sat, sun)", k)
			}
			rs, err := parseRanges(y.BusinessHours[k])
			if err != nil {
				return bad("business_hours.%s: %v", k, err)
			}
			bh.Days[day] = rs
			open = open || len(rs) > 0
		}
		if !open {
			return bad("business_hours: no day has opening hours (e.g. mon: \"09:30-18:30\")")
		}
		p.BusinessHours = bh
	}
	if _, ok := p.Actions[CategoryOutOfHours]; ok && p.BusinessHours == nil {
		return bad("policies.out_of_hours needs business_hours (time_zone and the opening hours per weekday)")
	}
	if v := strings.TrimSpace(y.TaskDue); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return bad("task_due %q: a positive Go duration such as 2h or 30m", v)
		}
		if d > 30*24*time.Hour {
			return bad("task_due %q: at most 720h (30 days)", v)
		}
		p.TaskDue = d
	}
	if len(y.Departments) > 0 {
		p.Departments = map[string]string{}
		for _, k := range sortedKeys(y.Departments) {
			name, owner := strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(y.Departments[k])
			if name == "" {
				return bad("departments: a department name is empty")
			}
			if owner == "" {
				return bad("departments.%s: the CRM user id of the department's fallback owner is empty", k)
			}
			if _, dup := p.Departments[name]; dup {
				return bad("departments.%s: named twice (names are matched ignoring case)", k)
			}
			p.Departments[name] = owner
		}
	}
	return p, nil
}

// parseRanges reads "09:30-13:00, 14:00-18:30" (or "closed", or empty).
func parseRanges(s string) ([]Range, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "closed") {
		return nil, nil
	}
	var out []Range
	for _, part := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			return nil, fmt.Errorf("%q: want HH:MM-HH:MM, e.g. 09:30-18:30 (several separated by commas), or closed", part)
		}
		f, err1 := clock(from)
		t, err2 := clock(to)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q: want HH:MM-HH:MM with times from 00:00 to 24:00", part)
		}
		if t <= f {
			return nil, fmt.Errorf("%q: the range ends before it begins (a night shift is two ranges on two days)", part)
		}
		for _, r := range out {
			if f < r.To && r.From < t {
				return nil, fmt.Errorf("%q overlaps another range of the day", part)
			}
		}
		out = append(out, Range{From: f, To: t})
	}
	return out, nil
}

func clock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(m) != 2 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}

func isCategory(c Category) bool {
	for _, k := range Categories {
		if k == c {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
