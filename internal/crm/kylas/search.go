package kylas

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
)

// person is a search hit.
type person struct {
	ID           int64  `json:"id"`
	FirstName    string `json:"firstName"`
	LastName     string `json:"lastName"`
	PhoneNumbers []struct {
		Value    string `json:"value"`
		DialCode string `json:"dialCode"`
	} `json:"phoneNumbers"`
}

type searchBody struct {
	Fields   []string `json:"fields"`
	JSONRule jsonRule `json:"jsonRule"`
}

type jsonRule struct {
	Condition string `json:"condition"`
	Valid     bool   `json:"valid"`
	Rules     []rule `json:"rules"`
}

type rule struct {
	ID       string `json:"id"`
	Field    string `json:"field"`
	Type     string `json:"type"`
	Input    string `json:"input"`
	Operator string `json:"operator"`
	Value    string `json:"value"`
}

// searchTerm is the form of e164 to search for: Kylas keeps the national number in
// phoneNumbers[].value (the dial code apart: kylastech/kylas-crm-mcp-server main.py
// `_normalize_field_values`, and its "search_leads_by_term" searches phoneNumbers
// among other fields with one multi_field rule). A free-text term found inside a
// stored value matches it whether the value was stored nationally, with a trunk 0 or
// whole ("+91…"), so the national number is the one term that covers the forms; the
// sandbox matches no more than that (the stricter reading), and hits are checked
// exactly. One request per entity.
func searchTerm(e164 string) string {
	v := phone.Variants(e164)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// findRelated returns the contact (preferred) or lead whose phone number is e164, or
// nil — from the tenant's shared cache, else one search per entity; with
// unknown_caller: create_lead it creates the lead an unknown caller lacks (owned by
// the call's owner, named by crm.LeadFor). A transient search failure fails the
// write (it is retried); a permanent one (e.g. a key without search rights) writes
// the call unrelated rather than never.
func (a *Adapter) findRelated(ctx context.Context, c crm.Call, e164 string) (*related, error) {
	if phone.E164(e164, "") == "" {
		return nil, nil // anonymous or not a number: nothing to match
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
			Msg("kylas: lead/contact search or lead creation refused; writing the call log without relatedTo")
		return nil, nil
	}
	if err != nil || p == nil {
		return nil, err
	}
	id, err := strconv.ParseInt(p.ID, 10, 64)
	if err != nil {
		return nil, nil // not a Kylas id (a stale cache entry of another CRM)
	}
	return &related{ID: id, Entity: p.Entity, Name: p.Name, PhoneNumber: e164}, nil
}

// lookup searches contacts and leads for e164 at once (one request per entity, the
// two in parallel: a new caller costs one round trip, not two); a contact is
// preferred to a lead.
func (a *Adapter) lookup(ctx context.Context, e164 string) (*crm.Party, error) {
	term := searchTerm(e164)
	entities := [...]string{crm.EntityContact, crm.EntityLead}
	var found [len(entities)]*crm.Party
	g, gctx := errgroup.WithContext(ctx)
	for i, entity := range entities {
		g.Go(func() error {
			hits, err := a.search(gctx, entity, term)
			if err != nil {
				return err
			}
			for _, p := range hits {
				if a.hasNumber(p, e164) {
					found[i] = &crm.Party{Entity: entity, ID: strconv.FormatInt(p.ID, 10), Name: strings.TrimSpace(p.FirstName + " " + p.LastName)}
					return nil
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, p := range found {
		if p != nil {
			return p, nil
		}
	}
	return nil, nil
}

func (a *Adapter) hasNumber(p person, e164 string) bool {
	for _, n := range p.PhoneNumbers {
		v := strings.TrimSpace(n.Value)
		if !strings.HasPrefix(v, "+") && n.DialCode != "" {
			v = n.DialCode + strings.TrimLeft(v, "0 ") // "+91" + "09711636496"
		}
		if phone.E164(v, a.cfg.DefaultCountry) == e164 {
			return true
		}
	}
	return false
}

// search runs one multi_field search (POST /v1/search/{entity}, pages from 0, sort
// as kylastech/kylas-crm-mcp-server main.py sends it).
func (a *Adapter) search(ctx context.Context, entity, term string) ([]person, error) {
	body := searchBody{
		Fields: []string{"id", "firstName", "lastName", "phoneNumbers"},
		JSONRule: jsonRule{Condition: "AND", Valid: true, Rules: []rule{{
			ID: "multi_field", Field: "multi_field", Type: "multi_field", Input: "multi_field", Operator: "multi_field", Value: term,
		}}},
	}
	var resp struct {
		Content []person `json:"content"`
	}
	if _, err := crm.RetrySearch(ctx, func() (struct{}, error) {
		return struct{}{}, a.do(ctx, "kylas: search "+entity, http.MethodPost, "/v1/search/"+entity+"?page=0&size=20&sort=updatedAt,desc", body, &resp)
	}); err != nil {
		return nil, err
	}
	return resp.Content, nil
}

// createLead makes an unknown caller's lead (POST /v1/leads): the number as Kylas
// keeps numbers (national value, dial code, ISO country), owned by the call's owner,
// with the tenant's lead source (a picklist option id).
func (a *Adapter) createLead(ctx context.Context, n crm.NewLead) (crm.Party, error) {
	const op = "kylas: create lead"
	cc, national := phone.Split(n.Number)
	region := phonenumbers.GetRegionCodeForCountryCode(atoi(cc))
	if national == "" || region == "" || region == "ZZ" {
		return crm.Party{}, &crm.Error{Op: op, Message: "the number has no country Kylas knows", Permanent: true}
	}
	body := map[string]any{
		"lastName":     n.LastName,
		"phoneNumbers": []map[string]any{{"type": "MOBILE", "code": region, "value": national, "dialCode": "+" + cc, "primary": true}},
	}
	if n.FirstName != "" {
		body["firstName"] = n.FirstName
	}
	if owner, err := strconv.ParseInt(n.OwnerID, 10, 64); err == nil && owner > 0 {
		body["ownerId"] = owner
	}
	if a.cfg.Leads.Source != "" {
		src, err := strconv.ParseInt(a.cfg.Leads.Source, 10, 64)
		if err != nil {
			return crm.Party{}, &crm.Error{Op: op, Message: "lead source " + strconv.Quote(a.cfg.Leads.Source) + " is not a picklist option id", Permanent: true}
		}
		body["source"] = src
	}
	var resp struct {
		ID json.Number `json:"id"`
	}
	if err := a.do(ctx, op, http.MethodPost, "/v1/leads", body, &resp); err != nil {
		return crm.Party{}, err
	}
	if resp.ID == "" {
		return crm.Party{}, &crm.Error{Op: op, Status: http.StatusCreated, Message: "response has no lead id", Unknown: true}
	}
	return crm.Party{Entity: crm.EntityLead, ID: resp.ID.String(), Name: strings.TrimSpace(n.FirstName + " " + n.LastName)}, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
