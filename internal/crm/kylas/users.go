package kylas

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/phone"
)

// Users are read 50 a page, Kylas's largest lookup page; maxUserPages bounds the walk.
const (
	userPageSize = 50
	maxUserPages = 400
)

// Users lists every Kylas user, active or not, for user sync (directory.Source).
// Kylas documents no listing of whole users: GET /v1/users/lookup?q=name: (every user,
// id and name only; pages from 0, at most 50 a page, totalPages) gives the ids, and
// GET /v1/users/{id} each user (kylastech/kylas-crm-mcp-server shared/users.py). Every
// page and every user must be read: a list that could not be read whole is an error,
// never a shorter list (user sync would remove the mappings of the users it lacks).
func (a *Adapter) Users(ctx context.Context) ([]directory.User, error) {
	const op = "kylas: look users up"
	var ids []string
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page >= maxUserPages {
			return nil, &crm.Error{Op: op, Message: fmt.Sprintf("more than %d pages of users", maxUserPages), Permanent: true}
		}
		var p struct {
			Content []struct {
				ID json.Number `json:"id"`
			} `json:"content"`
			TotalPages *int `json:"totalPages"`
		}
		q := url.Values{"q": {"name:"}, "page": {strconv.Itoa(page)}, "size": {strconv.Itoa(userPageSize)}}
		if _, err := crm.RetrySearch(ctx, func() (struct{}, error) {
			return struct{}{}, a.get(ctx, op, "/v1/users/lookup?"+q.Encode(), &p)
		}); err != nil {
			return nil, fmt.Errorf("page %d: %w", page, err)
		}
		if p.TotalPages == nil {
			// Without totalPages we cannot know the list is whole.
			return nil, &crm.Error{Op: op, Message: fmt.Sprintf("page %d has no totalPages", page), Permanent: true}
		}
		for _, h := range p.Content {
			if id := h.ID.String(); id != "" && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if page+1 >= *p.TotalPages || len(p.Content) == 0 {
			break
		}
	}
	out := make([]directory.User, 0, len(ids))
	for _, id := range ids {
		var raw json.RawMessage
		if _, err := crm.RetrySearch(ctx, func() (struct{}, error) {
			return struct{}{}, a.get(ctx, "kylas: get user", "/v1/users/"+url.PathEscape(id), &raw)
		}); crm.HTTPStatus(err) == http.StatusNotFound {
			continue // deleted since the lookup: gone from the list, as it is from Kylas
		} else if err != nil {
			return nil, fmt.Errorf("user %s: %w", id, err)
		}
		u, err := decodeUser(raw, a.cfg.DefaultCountry)
		if err != nil {
			return nil, &crm.Error{Op: op, Message: "decoding user " + id, Err: err, Permanent: true}
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

// Ping checks the connection and the key: GET /v1/users/me (the key's own user).
func (a *Adapter) Ping(ctx context.Context) error {
	var me json.RawMessage
	return a.get(ctx, "kylas: test connection", "/v1/users/me", &me)
}
