package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Tasks (POST /v1/tasks, POST /v1/tasks/search, GET /v1/entities/task/fields), as
// kylastech/kylas-crm-mcp-server builds them (entities/task.py, registry/task.yaml,
// shared/meta.py): a task is {name, description, dueDate (UTC ISO), assignedTo (a
// user id), type, status, priority (picklist option ids, from the task fields API),
// relation [{targetEntityId, targetEntityType LEAD|CONTACT|DEAL|COMPANY,
// targetEntityName}]}; the fields API lists {id, name, displayName, type, standard,
// required, filterable, active, picklist {values [{id, name, displayName}]}}; search
// pages from 0, size <= 100, sort e.g. createdAt,desc, filters on filterable fields
// plus associatedLeads / associatedContacts (LOOK_UP: equal, in). Stricter readings:
// every field the fields API marks required is refused when missing (name, dueDate,
// assignedTo, type, status, priority); a picklist value must be one of the field's
// option ids (a name is refused); the related lead or contact must exist (the
// sandbox keeps no deals or companies: those ids are all unknown), as must the
// assignedTo user; a search without sort is a 404, as for call logs (unconfirmed: no
// public source found, see docs/crm-contracts.md). Errors: {code,
// message, fieldErrors[]}.

// KylasTask is a task as the sandbox keeps it.
type KylasTask struct {
	ID          int64               `json:"id"`
	Name        string              `json:"name"`
	Description string              `json:"description,omitempty"`
	DueDate     string              `json:"dueDate"`
	AssignedTo  int64               `json:"assignedTo"`
	Type        int64               `json:"type"`
	Status      int64               `json:"status"`
	Priority    int64               `json:"priority"`
	Relation    []KylasTaskRelation `json:"relation,omitempty"`
	CreatedAt   time.Time           `json:"createdAt"`
}

// KylasTaskRelation links a task to a lead, contact, deal or company.
type KylasTaskRelation struct {
	TargetEntityID   int64  `json:"targetEntityId"`
	TargetEntityType string `json:"targetEntityType"`
	TargetEntityName string `json:"targetEntityName,omitempty"`
}

// KylasTaskOption is a picklist option of the sandbox's task fields.
type KylasTaskOption struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
}

// The sandbox's task picklists (a tenant's real ids differ: adapters read them from
// the fields API).
var kylasTaskPicklists = map[string][]KylasTaskOption{
	"type":     {{ID: 501, Name: "CALL", DisplayName: "Call"}, {ID: 502, Name: "EMAIL", DisplayName: "Email"}, {ID: 503, Name: "MEETING", DisplayName: "Meeting"}},
	"status":   {{ID: 601, Name: "OPEN", DisplayName: "Open"}, {ID: 602, Name: "IN_PROGRESS", DisplayName: "In Progress"}, {ID: 603, Name: "COMPLETED", DisplayName: "Completed"}},
	"priority": {{ID: 701, Name: "HIGH", DisplayName: "High"}, {ID: 702, Name: "MEDIUM", DisplayName: "Medium"}, {ID: 703, Name: "LOW", DisplayName: "Low"}},
}

var kylasTaskEntityTypes = []string{"LEAD", "CONTACT", "DEAL", "COMPANY"}

// taskFields is the fields API's answer.
func taskFields() []map[string]any {
	f := func(id int, name, display, typ string, required, filterable bool) map[string]any {
		m := map[string]any{"id": id, "name": name, "displayName": display, "type": typ, "standard": true,
			"required": required, "filterable": filterable, "active": true}
		if opts, ok := kylasTaskPicklists[name]; ok {
			m["picklist"] = map[string]any{"values": opts}
		}
		return m
	}
	return []map[string]any{
		f(1, "name", "Task Name", "TEXT_FIELD", true, false),
		f(2, "description", "Description", "PARAGRAPH_TEXT", false, false),
		f(3, "dueDate", "Due Date", "DATETIME_PICKER", true, true),
		f(4, "assignedTo", "Assigned To", "LOOK_UP", true, true),
		f(5, "type", "Type", "PICK_LIST", true, true),
		f(6, "status", "Status", "PICK_LIST", true, true),
		f(7, "priority", "Priority", "PICK_LIST", true, true),
		f(8, "createdAt", "Created At", "DATETIME_PICKER", false, true),
	}
}

func (k *Kylas) getTaskFields(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("entityType") != "task" {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "entityType must be task")
		return
	}
	pg, err := paginate(taskFields(), r, 0, 100, 100)
	if err != nil {
		kylasFail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (k *Kylas) createTask(w http.ResponseWriter, r *http.Request) {
	var b map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "malformed JSON body")
		return
	}
	var fe []kylasFieldError
	bad := func(field, msg string) { fe = append(fe, kylasFieldError{field, msg}) }
	present := func(f string) bool { s := strings.TrimSpace(string(b[f])); return s != "" && s != "null" && s != `""` }
	for _, f := range taskFields() {
		if name := f["name"].(string); f["required"].(bool) && !present(name) {
			bad(name, "is required")
		}
	}
	var t KylasTask
	str := func(f string, out *string, max int) {
		if !present(f) {
			return
		}
		if json.Unmarshal(b[f], out) != nil {
			bad(f, "must be a string")
		} else if len(*out) > max {
			bad(f, fmt.Sprintf("at most %d characters", max))
		}
	}
	str("name", &t.Name, 255)
	str("description", &t.Description, 2500)
	var due string
	str("dueDate", &due, 64)
	if due != "" {
		if d, err := time.Parse(time.RFC3339Nano, due); err != nil {
			bad("dueDate", "must be an ISO-8601 date-time in UTC, e.g. 2026-05-01T18:29:59.999Z")
		} else {
			t.DueDate = d.UTC().Format(kylasTime)
		}
	}
	if present("assignedTo") {
		if json.Unmarshal(b["assignedTo"], &t.AssignedTo) != nil || t.AssignedTo <= 0 {
			bad("assignedTo", "must be a user id (a number)")
		} else {
			// The assignee must be a user (stricter reading: kylas.go, "Unknown ids").
			if !k.HasUser(t.AssignedTo) {
				bad("assignedTo", fmt.Sprintf("no user with id %d", t.AssignedTo))
			}
		}
	}
	for _, p := range []struct {
		f   string
		out *int64
	}{{"type", &t.Type}, {"status", &t.Status}, {"priority", &t.Priority}} {
		if !present(p.f) {
			continue
		}
		if json.Unmarshal(b[p.f], p.out) != nil || !slices.ContainsFunc(kylasTaskPicklists[p.f], func(o KylasTaskOption) bool { return o.ID == *p.out }) {
			bad(p.f, "must be an option id of the "+p.f+" picklist (GET /v1/entities/task/fields)")
		}
	}
	if present("relation") {
		if json.Unmarshal(b["relation"], &t.Relation) != nil {
			bad("relation", "must be a list of {targetEntityId, targetEntityType, targetEntityName}")
		}
		k.mu.Lock()
		for i, rel := range t.Relation {
			f := fmt.Sprintf("relation[%d]", i)
			switch {
			case !slices.Contains(kylasTaskEntityTypes, rel.TargetEntityType):
				bad(f+".targetEntityType", "must be one of "+strings.Join(kylasTaskEntityTypes, ", "))
			case !k.entityExists(rel.TargetEntityType, rel.TargetEntityID): // the sandbox keeps no deals or companies
				bad(f+".targetEntityId", fmt.Sprintf("no %s with id %d", strings.ToLower(rel.TargetEntityType), rel.TargetEntityID))
			}
		}
		k.mu.Unlock()
	}
	if len(fe) > 0 {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "validation failed", fe...)
		return
	}
	k.mu.Lock()
	k.nextID++
	t.ID, t.CreatedAt = k.nextID, k.opts.Now().UTC()
	k.tasks = append(k.tasks, &t)
	out := t
	k.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

// Tasks returns every task, in creation order.
func (k *Kylas) Tasks() []KylasTask {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]KylasTask, 0, len(k.tasks))
	for _, t := range k.tasks {
		c := *t
		c.Relation = slices.Clone(t.Relation)
		out = append(out, c)
	}
	return out
}

// kylasTaskFilters are the filterable task fields and their operators (shared/meta.py
// OPERATOR_MAPPING by field type; associated* are LOOK_UPs).
var kylasTaskFilters = map[string][]string{
	"associatedLeads":    {"equal", "in"},
	"associatedContacts": {"equal", "in"},
	"assignedTo":         {"equal", "not_equal", "in", "not_in"},
	"status":             {"equal", "not_equal", "in", "not_in"},
	"type":               {"equal", "not_equal", "in", "not_in"},
	"priority":           {"equal", "not_equal", "in", "not_in"},
	"dueDate":            {"between", "greater", "greater_or_equal", "less", "less_or_equal"},
	"createdAt":          {"between", "greater", "greater_or_equal", "less", "less_or_equal"},
}

func (k *Kylas) searchTasks(w http.ResponseWriter, r *http.Request) {
	sortBy := r.URL.Query().Get("sort")
	if sortBy == "" {
		kylasFail(w, http.StatusNotFound, "not_found", "no handler for this request: sort is required")
		return
	}
	field, dir, _ := strings.Cut(sortBy, ",")
	if !slices.Contains([]string{"createdAt", "dueDate"}, field) || (dir != "asc" && dir != "desc") {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "sort must be createdAt|dueDate,asc|desc")
		return
	}
	var b struct {
		JSONRule *struct {
			Condition string         `json:"condition"`
			Rules     []kylasLogRule `json:"rules"`
		} `json:"jsonRule"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil && !errors.Is(err, io.EOF) {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "malformed JSON body")
		return
	}
	if b.JSONRule == nil || len(b.JSONRule.Rules) == 0 {
		// registry/task.yaml: "Filters are REQUIRED (non-empty) for task".
		kylasFail(w, http.StatusBadRequest, "invalid_request", "jsonRule with at least one rule is required")
		return
	}
	if c := b.JSONRule.Condition; c != "AND" && c != "" {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "jsonRule.condition must be AND")
		return
	}
	var preds []func(KylasTask) bool
	for i, rule := range b.JSONRule.Rules {
		p, err := kylasTaskPredicate(rule)
		if err != nil {
			kylasFail(w, http.StatusBadRequest, "invalid_request", "invalid search rule",
				kylasFieldError{fmt.Sprintf("jsonRule.rules[%d]", i), err.Error()})
			return
		}
		preds = append(preds, p)
	}
	visible := k.opts.Now().Add(-k.gate.searchLag())
	var hits []KylasTask
	for _, t := range k.Tasks() {
		if t.CreatedAt.After(visible) {
			continue // not indexed yet
		}
		ok := true
		for _, p := range preds {
			ok = ok && p(t)
		}
		if ok {
			hits = append(hits, t)
		}
	}
	key := func(t KylasTask) string {
		if field == "dueDate" {
			return t.DueDate
		}
		return t.CreatedAt.Format(time.RFC3339Nano)
	}
	writeSortedPage(w, r, hits, key, func(t KylasTask) int64 { return t.ID }, dir == "desc", 0)
}

func kylasTaskPredicate(rule kylasLogRule) (func(KylasTask) bool, error) {
	ops, ok := kylasTaskFilters[rule.Field]
	if !ok {
		return nil, fmt.Errorf("field %q is not filterable", rule.Field)
	}
	if !slices.Contains(ops, rule.Operator) {
		return nil, fmt.Errorf("operator %q is not allowed on %s (%s)", rule.Operator, rule.Field, strings.Join(ops, ", "))
	}
	if rule.Field == "dueDate" || rule.Field == "createdAt" {
		if rule.Type != "date" {
			return nil, fmt.Errorf("type of %s must be date", rule.Field)
		}
		var vals []string
		if rule.Operator == "between" {
			if json.Unmarshal(rule.Value, &vals) != nil || len(vals) != 2 {
				return nil, errors.New("between needs [from, to]")
			}
		} else {
			var v string
			if json.Unmarshal(rule.Value, &v) != nil {
				return nil, errors.New("value must be an ISO-8601 date-time")
			}
			vals = []string{v}
		}
		ts := make([]time.Time, len(vals))
		for i, v := range vals {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("value %q must be an ISO-8601 date-time", v)
			}
			ts[i] = t
		}
		return func(t KylasTask) bool {
			at := t.CreatedAt
			if rule.Field == "dueDate" {
				at, _ = time.Parse(time.RFC3339Nano, t.DueDate)
			}
			switch rule.Operator {
			case "between":
				return !at.Before(ts[0]) && !at.After(ts[1])
			case "greater":
				return at.After(ts[0])
			case "greater_or_equal":
				return !at.Before(ts[0])
			case "less":
				return at.Before(ts[0])
			}
			return !at.After(ts[0])
		}, nil
	}
	if rule.Type != "long" {
		return nil, fmt.Errorf("type of %s must be long (an id)", rule.Field)
	}
	var vals []int64
	if rule.Operator == "in" || rule.Operator == "not_in" {
		if json.Unmarshal(rule.Value, &vals) != nil {
			return nil, errors.New("in needs a list of ids")
		}
	} else {
		var v int64
		if json.Unmarshal(rule.Value, &v) != nil {
			return nil, errors.New("value must be an id (a number)")
		}
		vals = []int64{v}
	}
	get := func(t KylasTask) []int64 {
		switch rule.Field {
		case "assignedTo":
			return []int64{t.AssignedTo}
		case "status":
			return []int64{t.Status}
		case "type":
			return []int64{t.Type}
		case "priority":
			return []int64{t.Priority}
		}
		want := map[string]string{"associatedLeads": "LEAD", "associatedContacts": "CONTACT"}[rule.Field]
		var ids []int64
		for _, rel := range t.Relation {
			if rel.TargetEntityType == want {
				ids = append(ids, rel.TargetEntityID)
			}
		}
		return ids
	}
	return func(t KylasTask) bool {
		has := slices.ContainsFunc(get(t), func(v int64) bool { return slices.Contains(vals, v) })
		if strings.HasPrefix(rule.Operator, "not_") {
			return !has
		}
		return has
	}, nil
}

// listTasks serves the sandbox's tasks for inspection (GET /v1/tasks, page from 0, up
// to 1000 a page); getTask is the real GET /v1/tasks/{id}.
func (k *Kylas) listTasks(w http.ResponseWriter, r *http.Request) {
	pg, err := paginate(k.Tasks(), r, 0, 1000, 1000)
	if err != nil {
		kylasFail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (k *Kylas) getTask(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	for _, t := range k.Tasks() {
		if t.ID == id {
			writeJSON(w, http.StatusOK, t)
			return
		}
	}
	kylasFail(w, http.StatusNotFound, "not_found", "task not found")
}
