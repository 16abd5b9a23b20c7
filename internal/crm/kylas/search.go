package kylas

import (
	"context"
	"net/http"
	"strings"

	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
	"github.com/rs/zerolog"
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

// searchTerms are the forms of e164 to search for, most likely first: Kylas keeps
// the national number in phoneNumbers[].value (the dial code apart), so the
// national form is what its free-text search finds; E.164 catches values stored
// whole. Other forms (trunk 0, digits with the code) cost a request each per
// entity and are rarely stored, so they are not tried.
func searchTerms(e164 string) []string {
	v := phone.Variants(e164)
	if len(v) == 0 {
		return nil
	}
	return []string{v[len(v)-1], v[0]}
}

// findRelated returns the contact (preferred) or lead whose phone number is
// e164, or nil. The search is free-text, so hits are checked for an exact match.
// A transient search failure fails the write (it is retried, and the cache below
// keeps the searches that did succeed); a permanent one (e.g. a key without
// search rights) writes the call unrelated rather than never.
func (a *Adapter) findRelated(ctx context.Context, e164 string) (*related, error) {
	terms := searchTerms(e164)
	for _, entity := range []string{"contact", "lead"} {
		for _, term := range terms {
			hits, err := a.search(ctx, entity, term)
			if crm.IsPermanent(err) {
				zerolog.Ctx(ctx).Warn().Err(err).Str("phone", phone.Mask(e164)).
					Msg("kylas: lead/contact search refused; writing the call log without relatedTo")
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			for _, p := range hits {
				if a.hasNumber(p, e164) {
					return &related{ID: p.ID, Entity: entity, Name: strings.TrimSpace(p.FirstName + " " + p.LastName), PhoneNumber: e164}, nil
				}
			}
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

// search runs one multi_field search, answered from the cache when it can.
func (a *Adapter) search(ctx context.Context, entity, term string) ([]person, error) {
	key := entity + "|" + term
	if hits, ok := a.searches.Get(key); ok {
		return hits, nil
	}
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
		return struct{}{}, a.do(ctx, "kylas: search "+entity, http.MethodPost, "/v1/search/"+entity+"?page=0&size=20", body, &resp)
	}); err != nil {
		return nil, err
	}
	a.searches.Put(key, resp.Content)
	return resp.Content, nil
}
