package sandbox

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// DefaultLeadSources is Zoho's stock Lead_Source picklist.
var DefaultLeadSources = []string{"Advertisement", "Cold Call", "Employee Referral", "External Referral", "Online Store",
	"Partner", "Public Relations", "Sales Email Alias", "Seminar Partner", "Internal Seminar", "Trade Show",
	"Web Download", "Web Research", "Chat"}

// insertLeads serves POST /crm/v8/Leads: up to 100 records, each accepted or refused
// on its own (zoho.com/crm/developer/docs/api/v8/insert-records.html). Last_Name is
// mandatory; First_Name at most 40 characters, Last_Name 80, phones 30; Lead_Source a
// value of its picklist; Tag a list of {name} (a name at most 25 characters: unconfirmed,
// no public source found — https://zoho.com/crm/developer/docs/api/v7/create-tag.html
// gives no length; the stricter reading, docs/crm-contracts.md).
func (z *Zoho) insertLeads(w http.ResponseWriter, r *http.Request) {
	data, ok := decodeData(w, r)
	if !ok {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	results := make([]recordResult, len(data))
	for i, in := range data {
		p, e := leadFields(in, i)
		if e == nil && p.OwnerID != "" {
			_, e = z.ownerRef(p.OwnerID, i)
		}
		if e != nil {
			results[i] = *e
			continue
		}
		if p.OwnerID == "" { // Zoho owns it by the token's user
			if u, ok := z.tokenUser(); ok {
				p.OwnerID = u.ID
			}
		}
		p.ID = z.newID()
		p.FullName = p.name()
		z.leads[p.ID] = p
		results[i] = recordResult{Code: "SUCCESS", Message: "record added", Status: "success",
			Details: map[string]any{"id": p.ID, "Created_Time": z.timestamp()}}
	}
	writeResults(w, http.StatusCreated, results)
}

func leadFields(in map[string]json.RawMessage, i int) (ZohoPerson, *recordResult) {
	var p ZohoPerson
	fail := func(code, field, msg string, extra map[string]any) (ZohoPerson, *recordResult) {
		e := fieldError(code, field, msg, i, extra)
		return ZohoPerson{}, &e
	}
	text := map[string]struct {
		out *string
		max int
	}{"First_Name": {&p.FirstName, 40}, "Last_Name": {&p.LastName, 80}, "Phone": {&p.Phone, 30},
		"Mobile": {&p.Mobile, 30}, "Email": {&p.Email, 100}, "Lead_Source": {&p.LeadSource, 120}}
	for name, raw := range in {
		switch name {
		case "Owner":
			var o struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(raw, &o) != nil || o.ID == "" {
				return fail("INVALID_DATA", name, "invalid data", map[string]any{"expected_data_type": "ownerlookup"})
			}
			p.OwnerID = o.ID
		case "Tag":
			var tags []struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(raw, &tags) != nil {
				return fail("INVALID_DATA", name, "invalid data", map[string]any{"expected_data_type": "tag"})
			}
			for _, t := range tags {
				if strings.TrimSpace(t.Name) == "" || utf8.RuneCountInString(t.Name) > 25 {
					return fail("INVALID_DATA", name, "a tag name is 1 to 25 characters", nil)
				}
				p.Tags = append(p.Tags, t.Name)
			}
		default:
			f, ok := text[name]
			if !ok {
				return fail("INVALID_DATA", name, "invalid field: the module has no field with this api_name", nil)
			}
			if json.Unmarshal(raw, f.out) != nil {
				return fail("INVALID_DATA", name, "invalid data", map[string]any{"expected_data_type": "text"})
			}
			if utf8.RuneCountInString(*f.out) > f.max {
				return fail("INVALID_DATA", name, "invalid data: the value is longer than the field's maximum length",
					map[string]any{"maximum_length": f.max})
			}
		}
	}
	switch {
	case strings.TrimSpace(p.LastName) == "":
		return fail("MANDATORY_NOT_FOUND", "Last_Name", "required field not found", nil)
	case p.LeadSource != "" && !slices.Contains(DefaultLeadSources, p.LeadSource):
		return fail("INVALID_DATA", "Lead_Source", "invalid data: not a value of the picklist",
			map[string]any{"expected_data_type": "picklist", "allowed_values": DefaultLeadSources})
	}
	return p, nil
}

// ZohoLead is a lead as GET /crm/v8/Leads lists it: the search fields with the
// lead's Owner {id, name, email}, Lead_Source and Tag [{name}], as Zoho returns
// them (zoho.com/crm/developer/docs/api/v8/get-records.html), so that a user can
// see who owns a lead calltrack made. Leads seeded without an owner have none.
type ZohoLead struct {
	ZohoPerson
	Owner *ZohoRef            `json:"Owner,omitempty"`
	Tag   []map[string]string `json:"Tag,omitempty"`
}

// LeadViews returns every lead with its owner and tags, in id order.
func (z *Zoho) LeadViews() []ZohoLead {
	leads := z.Leads()
	z.mu.Lock()
	defer z.mu.Unlock()
	out := make([]ZohoLead, len(leads))
	for i, p := range leads {
		out[i] = ZohoLead{ZohoPerson: p}
		if p.OwnerID != "" {
			ref := z.userRef(p.OwnerID)
			out[i].Owner = &ref
		}
		for _, t := range p.Tags {
			out[i].Tag = append(out[i].Tag, map[string]string{"name": t})
		}
	}
	return out
}

// Leads returns every lead, in id order.
func (z *Zoho) Leads() []ZohoPerson {
	z.mu.Lock()
	defer z.mu.Unlock()
	out := make([]ZohoPerson, 0, len(z.leads))
	for _, p := range z.leads {
		p.Tags = slices.Clone(p.Tags)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b ZohoPerson) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// fieldsMeta serves GET /crm/v8/settings/fields?module=Calls: the fields calltrack
// reads (Call_Result's picklist values, Voice_Recording__s's length).
func (z *Zoho) fieldsMeta(w http.ResponseWriter, r *http.Request) {
	if m := r.URL.Query().Get("module"); m != "Calls" {
		zohoFail(w, http.StatusBadRequest, "INVALID_MODULE", "the sandbox serves the Calls module's fields", map[string]any{"param": "module"})
		return
	}
	values := []map[string]string{{"display_value": "-None-", "actual_value": "-None-"}}
	for _, v := range z.callResults() {
		values = append(values, map[string]string{"display_value": v, "actual_value": v})
	}
	lengths := z.fieldLengths()
	writeJSON(w, http.StatusOK, map[string]any{"fields": []map[string]any{
		{"api_name": "Subject", "data_type": "text", "length": lengths["Subject"]},
		{"api_name": "Call_Type", "data_type": "picklist", "pick_list_values": []map[string]string{
			{"display_value": "Outbound", "actual_value": "Outbound"}, {"display_value": "Inbound", "actual_value": "Inbound"},
			{"display_value": "Missed", "actual_value": "Missed"}}},
		{"api_name": "Call_Duration", "data_type": "text", "length": 10},
		{"api_name": "Call_Result", "data_type": "picklist", "pick_list_values": values},
		{"api_name": "Description", "data_type": "textarea", "length": lengths["Description"]},
		{"api_name": "Voice_Recording__s", "data_type": "website", "length": lengths["Voice_Recording__s"]},
	}})
}
