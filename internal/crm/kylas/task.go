package kylas

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/calltrack/calltrack/internal/crm"
)

// Follow-up tasks (crm.Tasker). Sources: kylastech/kylas-crm-mcp-server
// entities/task.py (POST /v1/tasks; POST /v1/tasks/search; task fields from
// GET /v1/entities/task/fields?entityType=task&custom-only=false&page=0&size=100),
// registry/task.yaml (relation [{targetEntityId, targetEntityType LEAD|CONTACT|...,
// targetEntityName}], dueDate as UTC ISO, search filters on associatedLeads /
// associatedContacts, page from 0, size <= 100), shared/meta.py (picklist filters and
// values by option id). Stricter reading: type, status and priority are sent as
// option ids read from the tenant's own fields API (its ids are per tenant), and
// every field that API marks required is sent.

var _ crm.Tasker = (*Adapter)(nil)

// taskFieldsTTL is how long a tenant's task picklists are trusted.
const taskFieldsTTL = time.Hour

// taskFieldsCache keeps the option ids a task is created with.
type taskFieldsCache struct {
	mu      sync.Mutex
	fetched time.Time
	ids     taskOptionIDs
}

type taskOptionIDs struct{ Type, Status, Priority int64 }

type taskField struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
	Active   *bool  `json:"active"`
	Picklist *struct {
		Values         []taskOption `json:"values"`
		PicklistValues []taskOption `json:"picklistValues"` // the other spelling shared/meta.py reads
	} `json:"picklist"`
}

type taskOption struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
}

// taskOptions returns the option ids of a follow-up task: type Call, status Open,
// priority Medium (or Normal) — each by name or display name, ignoring case — else
// the picklist's first option.
func (a *Adapter) taskOptions(ctx context.Context) (taskOptionIDs, error) {
	const op = "kylas: task fields"
	c := &a.taskFields
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetched.IsZero() && time.Since(c.fetched) < taskFieldsTTL {
		return c.ids, nil
	}
	var raw json.RawMessage
	if err := a.do(ctx, op, http.MethodGet, "/v1/entities/task/fields?entityType=task&custom-only=false&page=0&size=100", nil, &raw); err != nil {
		return taskOptionIDs{}, err
	}
	var fields []taskField
	if json.Unmarshal(raw, &fields) != nil { // a list, or a page {content|data: [...]}
		var pg struct {
			Content []taskField `json:"content"`
			Data    []taskField `json:"data"`
		}
		if err := json.Unmarshal(raw, &pg); err != nil {
			return taskOptionIDs{}, &crm.Error{Op: op, Message: "unreadable task fields", Err: err, Permanent: true}
		}
		fields = append(pg.Content, pg.Data...)
	}
	pick := func(name string, want ...string) (int64, error) {
		for _, f := range fields {
			if f.Name != name || (f.Active != nil && !*f.Active) || f.Picklist == nil {
				continue
			}
			opts := append(f.Picklist.Values, f.Picklist.PicklistValues...)
			for _, w := range want {
				for _, o := range opts {
					if strings.EqualFold(o.Name, w) || strings.EqualFold(o.DisplayName, w) {
						return o.ID, nil
					}
				}
			}
			if len(opts) > 0 {
				return opts[0].ID, nil
			}
		}
		return 0, &crm.Error{Op: op, Message: "the task field " + name + " has no picklist options", Permanent: true}
	}
	var ids taskOptionIDs
	var err error
	if ids.Type, err = pick("type", "call"); err != nil {
		return ids, err
	}
	if ids.Status, err = pick("status", "open", "not started"); err != nil {
		return ids, err
	}
	if ids.Priority, err = pick("priority", "medium", "normal"); err != nil {
		return ids, err
	}
	c.ids, c.fetched = ids, time.Now()
	return ids, nil
}

type taskRelation struct {
	TargetEntityID   int64  `json:"targetEntityId"`
	TargetEntityType string `json:"targetEntityType"`
	TargetEntityName string `json:"targetEntityName,omitempty"`
}

type taskBody struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	DueDate     string         `json:"dueDate"`
	AssignedTo  int64          `json:"assignedTo"`
	Type        int64          `json:"type"`
	Status      int64          `json:"status"`
	Priority    int64          `json:"priority"`
	Relation    []taskRelation `json:"relation,omitempty"`
}

// task builds the create body: the caller's lead or contact (resolved as for the
// call log, from the shared cache) as its relation.
func (a *Adapter) task(ctx context.Context, op string, t crm.Task) (*taskBody, error) {
	owner, err := strconv.ParseInt(t.OwnerID, 10, 64)
	if err != nil || owner <= 0 {
		return nil, &crm.Error{Op: op, Message: "owner " + strconv.Quote(t.OwnerID) + " is not a Kylas user id", Permanent: true}
	}
	ids, err := a.taskOptions(ctx)
	if err != nil {
		return nil, err
	}
	b := &taskBody{Name: t.Subject, Description: strings.TrimSpace(t.Description + "\n" + crm.TaskCallIDLine(t.Log.CallID)),
		DueDate: kylasTS(t.Due), AssignedTo: owner, Type: ids.Type, Status: ids.Status, Priority: ids.Priority}
	if !t.Log.Internal {
		rel, err := a.findRelated(ctx, crm.Call{Log: t.Log, OwnerID: t.OwnerID}, t.Log.CallerNumber)
		if err != nil {
			return nil, err
		}
		if rel != nil {
			b.Relation = []taskRelation{{TargetEntityID: rel.ID, TargetEntityType: strings.ToUpper(rel.Entity), TargetEntityName: rel.Name}}
		}
	}
	return b, nil
}

// CreateTask creates the follow-up task (POST /v1/tasks) and returns its id.
func (a *Adapter) CreateTask(ctx context.Context, t crm.Task) (string, error) {
	const op = "kylas: create task"
	body, err := a.task(ctx, op, t)
	if err != nil {
		return "", err
	}
	var rec struct {
		ID json.RawMessage `json:"id"`
	}
	if err := a.do(ctx, op, http.MethodPost, "/v1/tasks", body, &rec); err != nil {
		return "", err
	}
	id := strings.Trim(string(rec.ID), `"`)
	if id == "" || id == "null" {
		return "", &crm.Error{Op: op, Status: http.StatusCreated, Message: "response has no task id", Unknown: true}
	}
	return id, nil
}

// taskCallIDRE finds the "Call ID: <id>" line of a task's description.
var taskCallIDRE = regexp.MustCompile(`(?m)^Call ID: (\S+)\s*$`)

// FindTask finds the task calltrack created for t's call: the tasks related to the
// caller's lead/contact (associatedLeads / associatedContacts), else those assigned
// to the owner, newest first, recognised by the description's "Call ID:" line. An
// absent answer comes from a search made after the settle time (crm.FindSettled).
func (a *Adapter) FindTask(ctx context.Context, t crm.Task) (string, bool, error) {
	const op = "kylas: find task"
	if t.Log.CallID == "" {
		return "", false, &crm.Error{Op: op, Message: "the task's call has no call id", Permanent: true}
	}
	body, err := a.task(ctx, op, t)
	if err != nil {
		return "", false, err
	}
	var r rule
	switch {
	case len(body.Relation) > 0 && body.Relation[0].TargetEntityType == "CONTACT":
		r = rule{ID: "associatedContacts", Field: "associatedContacts", Type: "long", Operator: "equal"}
	case len(body.Relation) > 0:
		r = rule{ID: "associatedLeads", Field: "associatedLeads", Type: "long", Operator: "equal"}
	default:
		r = rule{ID: "assignedTo", Field: "assignedTo", Type: "long", Operator: "equal"}
	}
	value := body.AssignedTo
	if len(body.Relation) > 0 {
		value = body.Relation[0].TargetEntityID
	}
	return crm.FindSettled(ctx, a.cfg.SearchSettle, func(ctx context.Context) (string, bool, error) {
		for pg := 0; pg < findMaxPages; pg++ {
			var res struct {
				Content []struct {
					ID          json.Number `json:"id"`
					Description string      `json:"description"`
				} `json:"content"`
				TotalPages int `json:"totalPages"`
			}
			req := map[string]any{"fields": []string{"id", "name", "description", "assignedTo", "relation", "createdAt"},
				"jsonRule": map[string]any{"condition": "AND", "valid": true, "rules": []map[string]any{{
					"id": r.ID, "field": r.Field, "type": r.Type, "operator": r.Operator, "value": value}}}}
			if err := a.do(ctx, op, http.MethodPost, "/v1/tasks/search?page="+strconv.Itoa(pg)+"&size=100&sort=createdAt,desc", req, &res); err != nil {
				return "", false, err
			}
			for _, c := range res.Content {
				if m := taskCallIDRE.FindStringSubmatch(c.Description); m != nil && m[1] == t.Log.CallID {
					return c.ID.String(), true, nil
				}
			}
			if pg+1 >= res.TotalPages {
				return "", false, nil
			}
		}
		return "", false, &crm.Error{Op: op, Message: "too many tasks to read for the call's lead, contact or owner"}
	})
}
