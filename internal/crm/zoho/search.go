package zoho

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
)

// related is the contact or lead a call belongs to.
type related struct {
	id     string
	module string // Contacts, Leads
}

// phoneFields are the phone fields looked up in each module (Zoho's standard ones).
var phoneFields = map[string][]string{
	"Contacts": {"Phone", "Mobile", "Home_Phone", "Other_Phone"},
	"Leads":    {"Phone", "Mobile"},
}

// findRelated returns the contact (preferred) or lead whose phone number is e164, or
// nil — from the tenant's shared cache, else one COQL query per module covering
// every form a person may have typed the number in (Zoho matches as typed: E.164,
// with the country code but no plus, national with a trunk 0, the bare digits);
// with unknown_caller: create_lead it creates the lead an unknown caller lacks. A
// transient failure fails the write (it is retried); a permanent one (e.g. a token
// without the COQL scope) writes the call unrelated rather than never.
func (a *Adapter) findRelated(ctx context.Context, c crm.Call, e164 string) (*related, error) {
	if phone.E164(e164, "") == "" {
		return nil, nil
	}
	p, err := a.parties.Resolve(ctx, e164,
		func(ctx context.Context) (*crm.Party, error) {
			return a.lookup(ctx, e164)
		},
		func(ctx context.Context) (crm.Party, error) {
			return a.createLead(ctx, crm.LeadFor(c.Log, e164, c.OwnerID))
		})
	if crm.IsPermanent(err) {
		zerolog.Ctx(ctx).Warn().Err(err).Str("phone", phone.Mask(e164)).
			Msg("zoho: lead/contact lookup or lead creation refused; writing the call without a relation")
		return nil, nil
	}
	if err != nil || p == nil || !call.IsZohoID(p.ID) {
		return nil, err
	}
	module := "Leads"
	if p.Entity == crm.EntityContact {
		module = "Contacts"
	}
	return &related{id: p.ID, module: module}, nil
}

// lookup queries Contacts, then Leads, for e164 (one COQL query per module:
// zoho.com/crm/developer/docs/api/v8/COQL-Limitations.html allows "in" with up to 50
// values and brackets around more than two criteria).
func (a *Adapter) lookup(ctx context.Context, e164 string) (*crm.Party, error) {
	forms := phone.Variants(e164)
	quoted := make([]string, len(forms))
	for i, f := range forms {
		quoted[i] = "'" + coqlEscape(f) + "'"
	}
	in := "(" + strings.Join(quoted, ",") + ")"
	for _, module := range []string{"Contacts", "Leads"} {
		fields := phoneFields[module]
		conds := make([]string, len(fields))
		for i, f := range fields {
			conds[i] = f + " in " + in
		}
		q := fmt.Sprintf("select id, Full_Name, %s from %s where %s limit 20", strings.Join(fields, ", "), module, bracket(conds))
		var hits []hit
		op := "zoho: look up " + module
		if _, err := crm.RetrySearch(ctx, func() (struct{}, error) {
			var err error
			hits, err = a.coql(ctx, op, q)
			return struct{}{}, err
		}); err != nil {
			return nil, err
		}
		for _, h := range hits {
			if a.hasNumber(h, fields, e164) {
				entity := crm.EntityLead
				if module == "Contacts" {
					entity = crm.EntityContact
				}
				name, _ := h["Full_Name"].(string)
				return &crm.Party{Entity: entity, ID: h.id(), Name: name}, nil
			}
		}
	}
	return nil, nil
}

// bracket joins criteria with "or", two at a time in brackets, as COQL requires
// for more than two ("(A or B) or (C or D)").
func bracket(conds []string) string {
	for len(conds) > 1 {
		var next []string
		for i := 0; i < len(conds); i += 2 {
			if i+1 < len(conds) {
				next = append(next, "("+conds[i]+" or "+conds[i+1]+")")
			} else {
				next = append(next, conds[i])
			}
		}
		conds = next
	}
	if strings.HasPrefix(conds[0], "(") {
		return conds[0]
	}
	return "(" + conds[0] + ")"
}

// hit is a query row: the record's fields.
type hit map[string]any

func (h hit) id() string {
	switch v := h["id"].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// hasNumber double-checks a row: one of its phone fields is e164.
func (a *Adapter) hasNumber(h hit, fields []string, e164 string) bool {
	if h.id() == "" {
		return false
	}
	for _, f := range fields {
		if v, _ := h[f].(string); v != "" && phone.E164(v, a.cfg.DefaultCountry) == e164 {
			return true
		}
	}
	return false
}

// createLead inserts an unknown caller's lead (POST /crm/v8/Leads; Last_Name is
// mandatory): named by crm.LeadFor, the number in Phone, owned by the call's owner,
// with the tenant's Lead_Source and tag.
func (a *Adapter) createLead(ctx context.Context, n crm.NewLead) (crm.Party, error) {
	const op = "zoho: create lead"
	rec := map[string]any{"Last_Name": n.LastName, "Phone": n.Number, "Owner": ref{ID: n.OwnerID}}
	if n.FirstName != "" {
		rec["First_Name"] = n.FirstName
	}
	if a.cfg.Leads.Source != "" {
		rec["Lead_Source"] = a.cfg.Leads.Source
	}
	if a.cfg.Leads.Tag != "" {
		rec["Tag"] = []map[string]string{{"name": a.cfg.Leads.Tag}}
	}
	r, err := a.sendJSON(ctx, op, http.MethodPost, "/crm/v8/Leads", map[string]any{"data": []any{rec}})
	if err != nil {
		return crm.Party{}, err
	}
	id, err := results(op, r, 1)[0].get()
	if err != nil {
		return crm.Party{}, err
	}
	return crm.Party{Entity: crm.EntityLead, ID: id, Name: strings.TrimSpace(n.FirstName + " " + n.LastName)}, nil
}
