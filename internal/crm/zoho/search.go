package zoho

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
)

// related is the contact or lead a call belongs to.
type related struct {
	id     string
	module string // Contacts, Leads
}

// phoneFields are the phone fields of Zoho's Contacts and Leads.
var phoneFields = []string{"Phone", "Mobile", "Home_Phone", "Other_Phone", "Asst_Phone"}

// findRelated returns the contact (preferred) or lead whose phone number is
// e164, or nil. Zoho's phone search matches the number as it was typed, so every
// form a person may have typed is tried: E.164, with the country code but no
// plus, national with a trunk 0, and the bare 10 digits. A transient search
// failure fails the write (it is retried; the cache keeps the searches that did
// succeed); a permanent one (e.g. a token without search scope) writes the call
// unrelated rather than never.
func (a *Adapter) findRelated(ctx context.Context, e164 string) (*related, error) {
	terms := phone.Variants(e164)
	for _, module := range []string{"Contacts", "Leads"} {
		for _, term := range terms {
			hits, err := a.search(ctx, module, term)
			if crm.IsPermanent(err) {
				zerolog.Ctx(ctx).Warn().Err(err).Str("phone", phone.Mask(e164)).
					Msg("zoho: lead/contact search refused; writing the call without a relation")
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			for _, h := range hits {
				if a.hasNumber(h, e164) {
					return &related{id: h.id(), module: module}, nil
				}
			}
		}
	}
	return nil, nil
}

// hit is a search result: the record's fields.
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

// hasNumber double-checks a hit: one of its phone fields is e164. A hit showing no
// phone field at all is taken on the search's word.
func (a *Adapter) hasNumber(h hit, e164 string) bool {
	if h.id() == "" {
		return false
	}
	shown := false
	for _, f := range phoneFields {
		v, _ := h[f].(string)
		if v == "" {
			continue
		}
		shown = true
		if phone.E164(v, a.cfg.DefaultCountry) == e164 {
			return true
		}
	}
	return !shown
}

// search runs GET /crm/v8/{module}/search?phone=term, answered from the cache
// when it can. 204 means no match. Concurrent searches for the same term (a burst
// of calls from one number) share one request, which no one caller's
// cancellation ends.
func (a *Adapter) search(ctx context.Context, module, term string) ([]hit, error) {
	key := module + "|" + term
	if hits, ok := a.searches.Get(key); ok {
		return hits, nil
	}
	ch := a.flights.DoChan(key, func() (any, error) {
		if hits, ok := a.searches.Get(key); ok { // a flight just ended and cached it
			return hits, nil
		}
		sctx := context.WithoutCancel(ctx)
		return crm.RetrySearch(sctx, func() ([]hit, error) { return a.searchOnce(sctx, module, term) })
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]hit), nil
	case <-ctx.Done():
		return nil, &crm.Error{Op: "zoho: search " + module, Err: ctx.Err()}
	}
}

func (a *Adapter) searchOnce(ctx context.Context, module, term string) ([]hit, error) {
	op := "zoho: search " + module
	r, err := a.send(ctx, op, http.MethodGet, "/crm/v8/"+module+"/search?phone="+url.QueryEscape(term), "", nil)
	if err != nil {
		return nil, err
	}
	var hits []hit
	switch st := r.resp.StatusCode; {
	case st == http.StatusNoContent:
	case st >= 200 && st <= 299:
		var body struct {
			Data []hit `json:"data"`
		}
		dec := json.NewDecoder(bytes.NewReader(r.data))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, &crm.Error{Op: op, Status: st, Message: "decoding response", Err: err, Permanent: true}
		}
		hits = body.Data
	default:
		return nil, apiError(op, r)
	}
	a.searches.Put(module+"|"+term, hits)
	return hits, nil
}
