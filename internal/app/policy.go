package app

import (
	"fmt"
	"time"

	"github.com/calltrack/calltrack/internal/callpolicy"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/tenant"
)

// followUps builds the service that creates call policies' follow-up tasks
// (log_and_task) through each tenant's CRM adapter, its state in Redis.
func (a *App) followUps() *callpolicy.FollowUps {
	return &callpolicy.FollowUps{
		Store: callpolicy.RedisTaskStore{Redis: a.Redis, Prefix: a.Cfg.RedisPrefix},
		CRMs: func(t *tenant.Tenant) (crm.Tasker, error) {
			ad, err := a.Adapters(t)
			if err != nil {
				return nil, err
			}
			if m, ok := ad.(metered); ok {
				ad = m.Adapter // crm.go: counts call operations only
			}
			tk, ok := ad.(crm.Tasker)
			if !ok {
				return nil, fmt.Errorf("the %s adapter creates no tasks", t.CRM.Kind)
			}
			return tk, nil
		},
		Tasks: callpolicy.Tasks{Settle: a.Cfg.WriterSettle},
		Trace: a.Trace,
		Log:   a.Log,
	}
}

// DevCallPolicy is tenant demo's call policy in `calltrack dev`: a missed call is
// logged with a follow-up task for its owner (due in 2 h); calls of department sales
// whose agent is not mapped (or that rang no agent) belong to CRM user 1002. Its
// business hours (Mon–Fri 09:30–18:30, Sat 10:00–14:00 in Asia/Kolkata) are shown on
// the Setup page; with no out_of_hours policy they change nothing.
func DevCallPolicy() tenant.CallPolicy {
	ist, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		ist = time.FixedZone("Asia/Kolkata", 5*3600+1800)
	}
	bh := &tenant.BusinessHours{Location: ist}
	for d := time.Monday; d <= time.Friday; d++ {
		bh.Days[d] = []tenant.Range{{From: 9*60 + 30, To: 18*60 + 30}}
	}
	bh.Days[time.Saturday] = []tenant.Range{{From: 10 * 60, To: 14 * 60}}
	return tenant.CallPolicy{TaskDue: tenant.DefaultTaskDue, BusinessHours: bh,
		Actions:     map[tenant.Category]tenant.Action{tenant.CategoryMissed: tenant.ActionLogAndTask},
		Departments: map[string]string{"sales": DevDepartmentOwner}}
}

// DevDepartmentOwner is the Kylas sandbox user (Priya N) who owns tenant demo's sales calls of unmapped agents.
const DevDepartmentOwner = "1002"
