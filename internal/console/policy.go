package console

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/tenant"
)

// The Setup page's call policies and click-to-call, in words (issue 16): what the
// tenants file says, never a secret.

// policyView is a tenant's call policy as the Setup page shows it.
type policyView struct {
	Rules         []policyRule
	BusinessHours []string // "Mon 09:30–18:30", one a day, Monday first; nil: none set
	Zone          string
	TaskDue       time.Duration
	Departments   []departmentRow
}

type policyRule struct {
	Category, What, Action string
	Set                    bool // false: the default (log)
}

type departmentRow struct{ Name, Owner, OwnerName string }

// policyWhat says what each category covers, as the README's Call policies does.
var policyWhat = map[tenant.Category]string{
	tenant.CategoryInternal:           "the other party is one of the tenant's agents",
	tenant.CategoryOutOfHours:         "an incoming call no agent answered, outside business hours",
	tenant.CategoryMissed:             "an incoming call nobody answered",
	tenant.CategoryVoicemail:          "an incoming call that left a voicemail",
	tenant.CategoryUnansweredOutgoing: "an agent's call the customer did not answer",
}

// actionWords says what an action does.
var actionWords = map[tenant.Action]string{
	tenant.ActionLog:        "log",
	tenant.ActionLogAndTask: "log and a follow-up task for the owner",
	tenant.ActionSkip:       "skip (nothing written to the CRM)",
}

var dayOrder = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

func newPolicyView(p tenant.CallPolicy, names map[string]string) policyView {
	v := policyView{TaskDue: p.TaskDue}
	if v.TaskDue == 0 {
		v.TaskDue = tenant.DefaultTaskDue
	}
	for _, c := range tenant.Categories {
		if c == tenant.CategoryOutOfHours && p.BusinessHours == nil {
			continue // never applies without business hours
		}
		a, set := p.Action(c)
		r := policyRule{Category: string(c), What: policyWhat[c], Action: actionWords[a], Set: set}
		if c == tenant.CategoryOutOfHours && !set {
			// Only an explicit out_of_hours applies (README, Call policies).
			r.Action, r.Set = "not set: such calls follow the missed and voicemail policies", true
		}
		v.Rules = append(v.Rules, r)
	}
	if b := p.BusinessHours; b != nil {
		v.Zone = b.Location.String()
		for _, d := range dayOrder {
			var spans []string
			for _, r := range b.Days[d] {
				spans = append(spans, clock(r.From)+"–"+clock(r.To))
			}
			hours := "closed"
			if len(spans) > 0 {
				hours = strings.Join(spans, ", ")
			}
			v.BusinessHours = append(v.BusinessHours, d.String()[:3]+" "+hours)
		}
	}
	for name, owner := range p.Departments {
		v.Departments = append(v.Departments, departmentRow{Name: name, Owner: owner, OwnerName: names[owner]})
	}
	sort.Slice(v.Departments, func(i, j int) bool { return v.Departments[i].Name < v.Departments[j].Name })
	return v
}

// clock renders minutes after midnight as HH:MM (24:00 for the day's end).
func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// clickToCallView is a tenant's click-to-call as the Setup page shows it.
type clickToCallView struct {
	On          bool
	Off         string // why it is off
	APITokenEnv string // the environment variable of the API token; "" when not from one
	APIToken    bool   // the tenant API is open (a token is set)
	OBDURL      string
	PublicIVRID string
	CallerID    string
	PerMinute   int
	MaxDuration int
}

func newClickToCallView(t *tenant.Tenant) clickToCallView {
	c := t.ClickToCall
	v := clickToCallView{On: c.Enabled(), APITokenEnv: t.APITokenEnv, APIToken: t.APIToken.Reveal() != "",
		OBDURL: c.OBDURL, PublicIVRID: c.PublicIVRID, CallerID: c.CallerID, PerMinute: c.PerUserPerMinute, MaxDuration: c.MaxCallDuration}
	if !c.Enabled() {
		v.Off = "the tenants file has no click_to_call block (MyOperator's api_key_env, secret_token_env and public_ivr_id)"
	}
	return v
}
