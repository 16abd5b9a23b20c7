package moapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/phone"
)

// maxUserPages bounds the paging: a server whose next_page never ends must not keep
// a sync running forever (MyOperator pages are ~20 users; 500 pages is 10,000 users).
const maxUserPages = 500

// UserRecord is one user as GET /user lists it. MyOperator sends numbers and flags
// sometimes as JSON numbers and sometimes as strings; scalar fields take both.
type UserRecord struct {
	UserID          scalar `json:"user_id"` // the 16-hex id webhooks carry as _id
	UUID            scalar `json:"uuid"`
	Name            scalar `json:"name"`
	Email           scalar `json:"email"`
	ContactNumber   scalar `json:"contact_number"`
	AlternateNumber scalar `json:"alternate_number"`
	CountryCode     scalar `json:"country_code"`
	Extension       scalar `json:"extension"`
	IsEnabled       scalar `json:"is_enabled"`
}

// usersPage is GET /user's answer: {"status","code","data":[...],"next_page"}.
type usersPage struct {
	Data     []UserRecord `json:"data"`
	NextPage scalar       `json:"next_page"`
}

// Users lists every user of the account, enabled or not, following next_page.
// It implements directory.Source.
func (c *Client) Users(ctx context.Context) ([]directory.User, error) {
	const op = "moapi: list users"
	var out []directory.User
	seen := map[string]bool{}
	page := 1
	for n := 0; n < maxUserPages; n++ {
		var p usersPage
		if err := c.call(ctx, request{op: op, method: http.MethodGet, path: "/user", query: url.Values{"page": {strconv.Itoa(page)}}}, &p); err != nil {
			return nil, err
		}
		for _, r := range p.Data {
			u := r.User()
			if u.ID == "" || seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			out = append(out, u)
		}
		next, err := strconv.Atoi(p.NextPage.String())
		if err != nil || next <= page || len(p.Data) == 0 {
			return out, nil
		}
		page = next
	}
	return nil, &Error{Op: op, Message: fmt.Sprintf("more than %d pages of users", maxUserPages), Permanent: true}
}

// User converts the record to the directory's shape: phones in E.164 (10-digit
// numbers get the record's country code, else India's), uuid and extension as fields.
func (r UserRecord) User() directory.User {
	u := directory.User{ID: r.UserID.String(), Name: r.Name.String(), Email: r.Email.String(), Active: r.IsEnabled.Bool(),
		Fields: map[string]string{}}
	cc := r.CountryCode.String()
	for _, raw := range []string{r.ContactNumber.String(), r.AlternateNumber.String()} {
		if p := phone.E164(raw, cc); p != "" && !contains(u.Phones, p) {
			u.Phones = append(u.Phones, p)
		}
	}
	if v := r.UUID.String(); v != "" {
		u.Fields["uuid"] = v
	}
	if v := r.Extension.String(); v != "" {
		u.Fields["extension"] = v
	}
	return u
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// scalar is a JSON scalar that may come as a string, a number, a boolean or null.
type scalar string

// UnmarshalJSON keeps the scalar's text ("" for null).
func (f *scalar) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "null":
		*f = ""
	case strings.HasPrefix(s, `"`):
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*f = scalar(strings.TrimSpace(v))
	case strings.HasPrefix(s, "{"), strings.HasPrefix(s, "["):
		*f = "" // not a scalar: ignore rather than fail the whole page
	default:
		*f = scalar(s)
	}
	return nil
}

// String is the scalar's text.
func (f scalar) String() string { return string(f) }

// Bool reads 1/"1"/true/"true"/"yes" as true.
func (f scalar) Bool() bool {
	switch strings.ToLower(string(f)) {
	case "1", "true", "yes", "y", "enabled", "active":
		return true
	}
	return false
}
