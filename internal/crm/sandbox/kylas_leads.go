package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Lead creation (POST /v1/leads), as kylastech/kylas-crm-mcp-server main.py builds
// it: firstName, lastName, phoneNumbers [{type MOBILE|WORK|HOME|PERSONAL, code (ISO
// 3166 two letters), value, dialCode, primary}] with exactly one primary, ownerId,
// and picklists (source) by option id. Stricter readings: lastName is required (the
// Kylas lead form's one mandatory name field — unconfirmed, no public source found,
// docs/crm-contracts.md); source must be a positive number.

var (
	kylasPhoneTypes = []string{"MOBILE", "WORK", "HOME", "PERSONAL"}
	isoCountryRE    = regexp.MustCompile(`^[A-Z]{2}$`)
	dialCodeRE      = regexp.MustCompile(`^\+[1-9][0-9]{0,3}$`)
)

// KylasLeadIn is a created lead as the sandbox keeps it (beyond the search fields).
type KylasLeadIn struct {
	OwnerID int64 `json:"ownerId,omitempty"`
	Source  int64 `json:"source,omitempty"`
}

func (k *Kylas) createLead(w http.ResponseWriter, r *http.Request) {
	var b struct {
		FirstName    string          `json:"firstName"`
		LastName     string          `json:"lastName"`
		PhoneNumbers []KylasPhone    `json:"phoneNumbers"`
		OwnerID      json.RawMessage `json:"ownerId"`
		Source       json.RawMessage `json:"source"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "malformed JSON body")
		return
	}
	var fe []kylasFieldError
	bad := func(field, msg string) { fe = append(fe, kylasFieldError{field, msg}) }
	if strings.TrimSpace(b.LastName) == "" {
		bad("lastName", "is required")
	}
	if len(b.LastName) > 255 || len(b.FirstName) > 255 {
		bad("lastName", "at most 255 characters")
	}
	primaries := 0
	for i, p := range b.PhoneNumbers {
		f := fmt.Sprintf("phoneNumbers[%d]", i)
		switch {
		case !slices.Contains(kylasPhoneTypes, p.Type):
			bad(f+".type", "must be one of "+strings.Join(kylasPhoneTypes, ", "))
		case !isoCountryRE.MatchString(p.Code):
			bad(f+".code", "must be a two-letter country code, e.g. IN")
		case p.DialCode != "" && !dialCodeRE.MatchString(p.DialCode):
			bad(f+".dialCode", "must be like +91")
		case digits(p.Value) == "" || strings.Trim(p.Value, "0123456789 ") != "":
			bad(f+".value", "must be the national number (digits)")
		}
		if p.Primary {
			primaries++
		}
	}
	if len(b.PhoneNumbers) > 0 && primaries != 1 {
		bad("phoneNumbers", "exactly one must be primary")
	}
	var owner, source int64
	for _, n := range []struct {
		field string
		raw   json.RawMessage
		out   *int64
	}{{"ownerId", b.OwnerID, &owner}, {"source", b.Source, &source}} {
		if s := strings.TrimSpace(string(n.raw)); s != "" && s != "null" {
			if json.Unmarshal(n.raw, n.out) != nil || *n.out <= 0 {
				bad(n.field, "must be a positive number (an id)")
			}
		}
	}
	if owner > 0 {
		// An owner must be a user (stricter reading: kylas.go, "Unknown ids").
		if !k.HasUser(owner) {
			bad("ownerId", fmt.Sprintf("no user with id %d", owner))
		}
	}
	if len(fe) > 0 {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "validation failed", fe...)
		return
	}
	if owner == 0 {
		owner = k.opts.KeyUserID
	}
	p := KylasPerson{FirstName: b.FirstName, LastName: b.LastName, PhoneNumbers: b.PhoneNumbers}
	id := k.addPerson("lead", p)
	k.mu.Lock()
	k.leadMeta[id] = KylasLeadIn{OwnerID: owner, Source: source}
	ownerRef := k.ownerRef(owner)
	k.mu.Unlock()
	p.ID = id
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "firstName": p.FirstName, "lastName": p.LastName,
		"phoneNumbers": p.PhoneNumbers, "ownerId": owner, "owner": ownerRef, "source": source})
}

// Lead returns a lead and what its creation said (owner, source); ok=false when absent.
func (k *Kylas) Lead(id int64) (KylasPerson, KylasLeadIn, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.leads[id]
	return p, k.leadMeta[id], ok
}

// KylasLead is a lead as GET /v1/leads/{id} (and the sandbox's listing) answers it:
// the search fields, and the owner and source Kylas returns with a lead (ownerId,
// source as an option id). Leads seeded without an owner (AddLead, PUT /leads/{id})
// have none.
type KylasLead struct {
	KylasPerson
	OwnerID int64        `json:"ownerId,omitempty"`
	Owner   *KylasIDName `json:"owner,omitempty"`
	Source  int64        `json:"source,omitempty"`
}

// leadView is p with its owner and source; callers hold k.mu.
func (k *Kylas) leadView(p KylasPerson) KylasLead {
	l := KylasLead{KylasPerson: p}
	l.PhoneNumbers = slices.Clone(p.PhoneNumbers)
	if m, ok := k.leadMeta[p.ID]; ok {
		l.OwnerID, l.Source = m.OwnerID, m.Source
		if m.OwnerID != 0 {
			ref := k.ownerRef(m.OwnerID)
			l.Owner = &ref
		}
	}
	return l
}

// LeadViews returns every lead with its owner and source, in id order (GET /v1/leads).
func (k *Kylas) LeadViews() []KylasLead {
	leads := k.Leads()
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]KylasLead, len(leads))
	for i, p := range leads {
		out[i] = k.leadView(p)
	}
	return out
}

func (k *Kylas) getLead(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	k.mu.Lock()
	p, found := k.leads[id]
	var l KylasLead
	if found {
		l = k.leadView(p)
	}
	k.mu.Unlock()
	if !found {
		kylasFail(w, http.StatusNotFound, "not_found", "lead not found")
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// Leads returns every lead, in id order.
func (k *Kylas) Leads() []KylasPerson {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]KylasPerson, 0, len(k.leads))
	for _, p := range k.leads {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b KylasPerson) int { return int(a.ID - b.ID) })
	return out
}
