package zoho

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/phone"
)

var _ directory.Source = (*Adapter)(nil)

// usersPerPage is Zoho's largest page of users.
const usersPerPage = 200

// zohoUser is a user as GET /crm/v8/users returns it.
type zohoUser struct {
	ID       json.RawMessage `json:"id"`
	FullName string          `json:"full_name"`
	Email    string          `json:"email"`
	Status   string          `json:"status"` // active, disabled, deleted
	Role     *struct {
		Name string `json:"name"`
	} `json:"role"`
	Profile *struct {
		Name string `json:"name"`
	} `json:"profile"`
	Phone  string `json:"phone"`
	Mobile string `json:"mobile"`
}

// Users lists every CRM user, active or not (GET /crm/v8/users?type=AllUsers,
// 200 a page, until info.more_records is false). It implements directory.Source.
func (a *Adapter) Users(ctx context.Context) ([]directory.User, error) {
	const op = "zoho: list users"
	var out []directory.User
	for page := 1; ; page++ {
		path := fmt.Sprintf("/crm/v8/users?type=AllUsers&per_page=%d&page=%d", usersPerPage, page)
		r, err := a.send(ctx, op, http.MethodGet, path, "", nil)
		if err != nil {
			return nil, err
		}
		if r.resp.StatusCode == http.StatusNoContent {
			return out, nil
		}
		if r.resp.StatusCode < 200 || r.resp.StatusCode > 299 {
			return nil, apiError(op, r)
		}
		var body struct {
			Users []zohoUser `json:"users"`
			Info  struct {
				MoreRecords bool `json:"more_records"`
			} `json:"info"`
		}
		if err := json.Unmarshal(r.data, &body); err != nil {
			return nil, &crm.Error{Op: op, Status: r.resp.StatusCode, Message: "decoding page " + fmt.Sprint(page), Err: err}
		}
		for _, u := range body.Users {
			out = append(out, a.user(u))
		}
		if !body.Info.MoreRecords || len(body.Users) == 0 {
			return out, nil
		}
		if page >= 10_000 { // a server that never says "no more" must not loop forever
			return nil, &crm.Error{Op: op, Message: "more than 10000 pages of users"}
		}
	}
}

func (a *Adapter) user(u zohoUser) directory.User {
	d := directory.User{ID: trimQuotes(string(u.ID)), Name: u.FullName, Email: u.Email, Active: u.Status == "active"}
	if u.Role != nil {
		d.Role = u.Role.Name
	}
	if u.Profile != nil {
		d.Profile = u.Profile.Name
	}
	for _, p := range []string{u.Phone, u.Mobile} {
		if e := phone.E164(p, a.cfg.DefaultCountry); e != "" && !slices.Contains(d.Phones, e) {
			d.Phones = append(d.Phones, e)
		}
	}
	return d
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// Ping checks the connection and the OAuth client: a token, then
// GET /crm/v8/users?type=CurrentUser.
func (a *Adapter) Ping(ctx context.Context) error {
	const op = "zoho: test connection"
	r, err := a.send(ctx, op, http.MethodGet, "/crm/v8/users?type=CurrentUser", "", nil)
	if err != nil {
		return err
	}
	if r.resp.StatusCode < 200 || r.resp.StatusCode > 299 {
		return apiError(op, r)
	}
	return nil
}
