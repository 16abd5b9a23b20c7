package kylas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/phone"
)

// maxUserPages bounds the users listing (100 per page).
const maxUserPages = 200

// Users lists every Kylas user, active or not, for user sync (directory.Source).
// It pages GET /v1/users; where that listing is not served (it is not in Kylas's
// documented API) it falls back to GET /v1/users/lookup, which gives ids and names
// only, plus GET /v1/users/{id} per user.
func (a *Adapter) Users(ctx context.Context) ([]directory.User, error) {
	const op = "kylas: list users"
	var out []directory.User
	for page := 1; page <= maxUserPages; page++ {
		var p struct {
			Content    []json.RawMessage `json:"content"`
			TotalPages int               `json:"totalPages"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "size": {"100"}}
		err := a.get(ctx, op, "/v1/users?"+q.Encode(), &p)
		var ce *crm.Error
		if page == 1 && errors.As(err, &ce) && (ce.Status == http.StatusNotFound || ce.Status == http.StatusMethodNotAllowed) {
			return a.usersByLookup(ctx)
		}
		if err != nil {
			return nil, err
		}
		for _, raw := range p.Content {
			u, err := decodeUser(raw, a.cfg.DefaultCountry)
			if err != nil {
				return nil, &crm.Error{Op: op, Message: "decoding user", Err: err, Permanent: true}
			}
			out = append(out, u)
		}
		if page >= p.TotalPages || len(p.Content) == 0 {
			return out, nil
		}
	}
	return nil, &crm.Error{Op: op, Message: fmt.Sprintf("more than %d pages of users", maxUserPages), Permanent: true}
}

func (a *Adapter) usersByLookup(ctx context.Context) ([]directory.User, error) {
	const op = "kylas: look users up"
	var hits struct {
		Content []struct {
			ID json.Number `json:"id"`
		} `json:"content"`
	}
	if err := a.get(ctx, op, "/v1/users/lookup?"+url.Values{"q": {"name:"}}.Encode(), &hits); err != nil {
		return nil, err
	}
	out := make([]directory.User, 0, len(hits.Content))
	for _, h := range hits.Content {
		var raw json.RawMessage
		if err := a.get(ctx, "kylas: get user", "/v1/users/"+url.PathEscape(h.ID.String()), &raw); err != nil {
			return nil, err
		}
		u, err := decodeUser(raw, a.cfg.DefaultCountry)
		if err != nil {
			return nil, &crm.Error{Op: op, Message: "decoding user " + h.ID.String(), Err: err, Permanent: true}
		}
		out = append(out, u)
	}
	return out, nil
}

// decodeUser reads a Kylas user: id, firstName, lastName, email, active, and where
// present phoneNumbers, a role/profile (a string or {id, name}) and custom fields
// (customFieldValues, and any other scalar property), which a "field:<name>" match
// can use.
func decodeUser(raw json.RawMessage, country string) (directory.User, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return directory.User{}, err
	}
	var b struct {
		ID           json.Number `json:"id"`
		FirstName    string      `json:"firstName"`
		LastName     string      `json:"lastName"`
		Email        string      `json:"email"`
		Active       *bool       `json:"active"`
		PhoneNumbers []struct {
			Value    string `json:"value"`
			DialCode string `json:"dialCode"`
		} `json:"phoneNumbers"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return directory.User{}, err
	}
	u := directory.User{ID: b.ID.String(), Name: strings.TrimSpace(b.FirstName + " " + b.LastName),
		Email: strings.TrimSpace(b.Email), Active: b.Active == nil || *b.Active, Fields: map[string]string{}}
	for _, p := range b.PhoneNumbers {
		// Kylas keeps the national number in value and the prefix in dialCode.
		num := p.Value
		if p.DialCode != "" && !strings.HasPrefix(num, "+") {
			num = p.DialCode + num
		}
		if e := phone.E164(num, country); e != "" {
			u.Phones = append(u.Phones, e)
		}
	}
	u.Role, u.Profile = nameOf(all["role"]), nameOf(all["profile"])
	if u.Role == "" {
		var roles []json.RawMessage
		if json.Unmarshal(all["roles"], &roles) == nil && len(roles) > 0 {
			u.Role = nameOf(roles[0])
		}
	}
	var custom map[string]json.RawMessage
	if json.Unmarshal(all["customFieldValues"], &custom) == nil {
		for k, v := range custom {
			if s, ok := scalarText(v); ok {
				u.Fields[k] = s
			}
		}
	}
	for k, v := range all {
		switch k {
		case "id", "firstName", "lastName", "email", "active", "phoneNumbers", "role", "roles", "profile", "customFieldValues":
			continue
		}
		if s, ok := scalarText(v); ok {
			u.Fields[k] = s
		}
	}
	if len(u.Fields) == 0 {
		u.Fields = nil
	}
	return u, nil
}

// nameOf reads a string, or the name of an {id, name} object.
func nameOf(raw json.RawMessage) string {
	if s, ok := scalarText(raw); ok {
		return s
	}
	var o struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.Name
}

// scalarText is a JSON string's or number's text; ok is false for anything else.
func scalarText(raw json.RawMessage) (string, bool) {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "" || s == "null":
		return "", false
	case strings.HasPrefix(s, `"`):
		var v string
		if json.Unmarshal(raw, &v) != nil || strings.TrimSpace(v) == "" {
			return "", false
		}
		return strings.TrimSpace(v), true
	case s[0] == '-' || (s[0] >= '0' && s[0] <= '9'):
		return s, true
	}
	return "", false
}

// get sends one authenticated GET and decodes a 2xx answer into out.
func (a *Adapter) get(ctx context.Context, op, pathQuery string, out any) error {
	return a.do(ctx, op, http.MethodGet, pathQuery, nil, out)
}
