package zoho

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
)

// Follow-up tasks (crm.Tasker): a record of the Tasks module, inserted with
// POST /crm/v8/Tasks {"data":[{Subject, Due_Date (YYYY-MM-DD), Status, Priority,
// Owner {id}, Who_Id {id} (a contact) or What_Id {id} + $se_module "Leads",
// Description}]} (zoho.com/crm/developer/docs/api/v8/insert-records.html; Subject is
// the module's mandatory field; Status and Priority are picklists whose stock values
// are "Not Started" and "Normal"). Tasks cannot be upserted either
// (.../v8/upsert-records.html), so, as for Calls, the call id goes on Subject as the
// " [<call id>]" suffix, which COQL can filter on (.../v8/COQL-Limitations.html).

var _ crm.Tasker = (*Adapter)(nil)

// Stock values of the Tasks module's picklists calltrack sets.
const (
	taskStatus   = "Not Started"
	taskPriority = "Normal"
)

// subjectMax is the length of a single-line field such as Subject.
const subjectMax = 255

func (a *Adapter) taskRecord(ctx context.Context, op string, t crm.Task) (map[string]any, error) {
	if !call.IsZohoID(t.OwnerID) {
		return nil, &crm.Error{Op: op, Message: fmt.Sprintf("owner %q is not a Zoho user id", t.OwnerID), Permanent: true}
	}
	tag := subjectTag(t.Log.CallID)
	subj := t.Subject
	if n := subjectMax - utf8.RuneCountInString(tag); utf8.RuneCountInString(subj) > n {
		subj = string([]rune(subj)[:n-1]) + "…"
	}
	rec := map[string]any{
		"Subject": subj + tag, "Due_Date": t.Due.In(a.cfg.TimeZone).Format("2006-01-02"),
		"Status": taskStatus, "Priority": taskPriority, "Owner": ref{ID: t.OwnerID},
		"Description": strings.TrimSpace(t.Description + "\n" + crm.TaskCallIDLine(t.Log.CallID)),
	}
	if !t.Log.Internal {
		rel, err := a.findRelated(ctx, crm.Call{Log: t.Log, OwnerID: t.OwnerID}, a.customer(t.Log))
		if err != nil {
			return nil, err
		}
		switch {
		case rel == nil:
		case rel.module == "Contacts":
			rec["Who_Id"] = ref{ID: rel.id}
		default:
			rec["What_Id"] = ref{ID: rel.id}
			rec["$se_module"] = rel.module
		}
	}
	return rec, nil
}

// CreateTask inserts the follow-up task and returns its id.
func (a *Adapter) CreateTask(ctx context.Context, t crm.Task) (string, error) {
	const op = "zoho: create task"
	rec, err := a.taskRecord(ctx, op, t)
	if err != nil {
		return "", err
	}
	r, err := a.sendJSON(ctx, op, http.MethodPost, "/crm/v8/Tasks", map[string]any{"data": []any{rec}})
	if err != nil {
		return "", err
	}
	return results(op, r, 1)[0].get()
}

// FindTask finds the task calltrack inserted for t's call: one COQL query on the
// Subject suffix, checked exactly in the results; "absent" only from a query made
// the settle time after FindTask began (crm.FindSettled).
func (a *Adapter) FindTask(ctx context.Context, t crm.Task) (string, bool, error) {
	const op = "zoho: find task"
	if t.Log.CallID == "" {
		return "", false, &crm.Error{Op: op, Message: "the task's call has no call id", Permanent: true}
	}
	tag := subjectTag(t.Log.CallID)
	q := fmt.Sprintf("select id, Subject from Tasks where Subject like '%%%s%%' limit 200", coqlEscape(t.Log.CallID))
	return crm.FindSettled(ctx, a.cfg.SearchSettle, func(ctx context.Context) (string, bool, error) {
		hits, err := crm.RetrySearch(ctx, func() ([]hit, error) { return a.coql(ctx, op, q) })
		if err != nil {
			return "", false, err
		}
		for _, h := range hits {
			if v, _ := h["Subject"].(string); strings.HasSuffix(v, tag) {
				return h.id(), true, nil
			}
		}
		return "", false, nil
	})
}
