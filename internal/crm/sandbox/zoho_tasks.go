package sandbox

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Tasks module (POST /crm/v8/Tasks; COQL on Tasks), as insert-records and the Tasks
// fields describe it (zoho.com/crm/developer/docs/api/v8/insert-records.html):
// Subject mandatory (MANDATORY_NOT_FOUND), single-line fields at most 255
// characters, Due_Date a date (YYYY-MM-DD), Status and Priority picklists, Owner
// {id}, Who_Id {id} a contact, What_Id {id} with $se_module naming its module.
// Stricter readings, refused with INVALID_DATA: a field the module does not have, a
// picklist value outside the stock options, What_Id without $se_module, a Who_Id
// that is not a contact, a What_Id lead that does not exist (or a record of a module
// the sandbox does not keep), no Owner (Zoho would default it to the token's user:
// for calltrack that is a wrong owner), an Owner that is not a user (zoho.go ownerRef).

// ZohoTask is a task as the sandbox keeps it.
type ZohoTask struct {
	ID          string   `json:"id"`
	Subject     string   `json:"Subject"`
	DueDate     string   `json:"Due_Date,omitempty"`
	Status      string   `json:"Status,omitempty"`
	Priority    string   `json:"Priority,omitempty"`
	Owner       ZohoRef  `json:"Owner"`
	WhoID       *ZohoRef `json:"Who_Id,omitempty"`
	WhatID      *ZohoRef `json:"What_Id,omitempty"`
	SeModule    string   `json:"$se_module,omitempty"`
	Description string   `json:"Description,omitempty"`
	CreatedTime string   `json:"Created_Time"`
	stored      time.Time
}

// Stock picklist values of the Tasks module.
var (
	zohoTaskStatuses   = []string{"Not Started", "Deferred", "In Progress", "Completed", "Waiting for input"}
	zohoTaskPriorities = []string{"High", "Highest", "Low", "Lowest", "Normal"}
	zohoTaskWritable   = []string{"Subject", "Due_Date", "Status", "Priority", "Owner", "Who_Id", "What_Id", "$se_module", "Description"}
)

func (z *Zoho) insertTasks(w http.ResponseWriter, r *http.Request) {
	data, ok := decodeData(w, r)
	if !ok {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	results := make([]recordResult, len(data))
	for i, in := range data {
		t, e := z.taskFields(in, i)
		if e != nil {
			results[i] = *e
			continue
		}
		t.ID, t.stored, t.CreatedTime = z.newID(), z.opts.Now(), z.timestamp()
		z.tasks = append(z.tasks, &t)
		by := map[string]any{"id": t.Owner.ID, "name": t.Owner.Name}
		results[i] = recordResult{Code: "SUCCESS", Message: "record added", Status: "success",
			Details: map[string]any{"id": t.ID, "Created_Time": t.CreatedTime, "Created_By": by, "Modified_By": by}}
	}
	writeResults(w, http.StatusCreated, results)
}

// taskFields validates one record; callers hold z.mu.
func (z *Zoho) taskFields(in map[string]json.RawMessage, i int) (ZohoTask, *recordResult) {
	var t ZohoTask
	fail := func(code, field, msg string, extra map[string]any) (ZohoTask, *recordResult) {
		e := fieldError(code, field, msg, i, extra)
		return ZohoTask{}, &e
	}
	for name := range in {
		if !slices.Contains(zohoTaskWritable, name) {
			return fail("INVALID_DATA", name, "invalid field: the module has no field with this api_name", nil)
		}
	}
	str := func(field string) (string, bool) {
		var s string
		raw, ok := in[field]
		if !ok || string(raw) == "null" {
			return "", true
		}
		return s, json.Unmarshal(raw, &s) == nil
	}
	ref := func(field string) (*ZohoRef, bool) {
		raw, ok := in[field]
		if !ok || string(raw) == "null" {
			return nil, true
		}
		var v struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &v) != nil || strings.TrimSpace(v.ID) == "" {
			return nil, false
		}
		return &ZohoRef{ID: v.ID}, true
	}
	var ok bool
	for _, f := range []struct {
		name string
		out  *string
		max  int
	}{{"Subject", &t.Subject, 255}, {"Due_Date", &t.DueDate, 10}, {"Status", &t.Status, 120}, {"Priority", &t.Priority, 120},
		{"$se_module", &t.SeModule, 64}, {"Description", &t.Description, 32000}} {
		if *f.out, ok = str(f.name); !ok {
			return fail("INVALID_DATA", f.name, "invalid data", map[string]any{"expected_data_type": "text"})
		}
		if utf8.RuneCountInString(*f.out) > f.max {
			return fail("INVALID_DATA", f.name, "invalid data: the value is longer than the field's maximum length", map[string]any{"maximum_length": f.max})
		}
	}
	if strings.TrimSpace(t.Subject) == "" {
		return fail("MANDATORY_NOT_FOUND", "Subject", "required field not found", nil)
	}
	if t.DueDate != "" {
		if _, err := time.Parse(time.DateOnly, t.DueDate); err != nil {
			return fail("INVALID_DATA", "Due_Date", "invalid data", map[string]any{"expected_data_type": "date"})
		}
	}
	if t.Status != "" && !slices.Contains(zohoTaskStatuses, t.Status) {
		return fail("INVALID_DATA", "Status", "invalid data: not a value of the picklist", map[string]any{"expected_data_type": "picklist", "allowed_values": zohoTaskStatuses})
	}
	if t.Priority != "" && !slices.Contains(zohoTaskPriorities, t.Priority) {
		return fail("INVALID_DATA", "Priority", "invalid data: not a value of the picklist", map[string]any{"expected_data_type": "picklist", "allowed_values": zohoTaskPriorities})
	}
	owner, ok := ref("Owner")
	if !ok {
		return fail("INVALID_DATA", "Owner", "invalid data", map[string]any{"expected_data_type": "ownerlookup"})
	}
	if owner == nil {
		// Zoho would own it by the token's user; a follow-up owned by anyone but the
		// call's owner is a wrong attribution, so the sandbox refuses it (stricter).
		return fail("MANDATORY_NOT_FOUND", "Owner", "required field not found", nil)
	}
	var e *recordResult
	if t.Owner, e = z.ownerRef(owner.ID, i); e != nil {
		return ZohoTask{}, e
	}
	if t.WhoID, ok = ref("Who_Id"); !ok || (t.WhoID != nil && z.contacts[t.WhoID.ID].ID == "") {
		return fail("INVALID_DATA", "Who_Id", "invalid data: no such contact", map[string]any{"expected_data_type": "lookup"})
	}
	if t.WhatID, ok = ref("What_Id"); !ok {
		return fail("INVALID_DATA", "What_Id", "invalid data", map[string]any{"expected_data_type": "lookup"})
	}
	switch {
	case t.WhatID != nil && t.SeModule == "":
		return fail("MANDATORY_NOT_FOUND", "$se_module", "required field not found: What_Id needs $se_module", nil)
	case t.WhatID == nil && t.SeModule != "":
		return fail("INVALID_DATA", "$se_module", "invalid data: $se_module without What_Id", nil)
	case t.SeModule != "" && !slices.Contains([]string{"Leads", "Accounts", "Deals", "Cases", "Campaigns"}, t.SeModule):
		return fail("INVALID_DATA", "$se_module", "invalid data: not a module a task can be related to", nil)
	case t.WhatID != nil && (t.SeModule != "Leads" || z.leads[t.WhatID.ID].ID == ""):
		// The sandbox keeps leads only: any other module's id is unknown.
		return fail("INVALID_DATA", "What_Id", "the related id given seems to be invalid", map[string]any{"id": t.WhatID.ID})
	}
	return t, nil
}

// Tasks returns every task, in creation order.
func (z *Zoho) Tasks() []ZohoTask {
	z.mu.Lock()
	defer z.mu.Unlock()
	out := make([]ZohoTask, 0, len(z.tasks))
	for _, t := range z.tasks {
		out = append(out, *t)
	}
	return out
}

// listTasks serves the sandbox's tasks for inspection (GET /crm/v8/Tasks).
func (z *Zoho) listTasks(w http.ResponseWriter, r *http.Request) {
	page, info, err := zohoPage(z.Tasks(), r, 1000, 1000)
	if err != nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error(), nil)
		return
	}
	if len(page) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": page, "info": info})
}

// taskRows lists tasks as COQL rows; tasks stored within the search lag are not there yet.
func (z *Zoho) taskRows() []map[string]any {
	visible := z.opts.Now().Add(-z.gate.searchLag())
	var rows []map[string]any
	for _, t := range z.Tasks() {
		if t.stored.After(visible) {
			continue
		}
		row := map[string]any{"id": t.ID, "Subject": t.Subject, "Due_Date": t.DueDate, "Status": t.Status,
			"Priority": t.Priority, "Owner": t.Owner.ID, "Created_Time": t.CreatedTime, "Description": t.Description}
		if t.WhoID != nil {
			row["Who_Id"] = t.WhoID.ID
		}
		if t.WhatID != nil {
			row["What_Id"] = t.WhatID.ID
		}
		rows = append(rows, row)
	}
	return rows
}
