package zoho

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/calltrack/calltrack/internal/crm"
)

// PhoneBridge v3: calltrack is registered as the org's telephony provider
// (https://www.zoho.com/phonebridge/developer/v3/integration.html), its users are
// PhoneBridge users (ids of their own, which callnotify's zohouser names:
// https://www.zoho.com/phonebridge/developer/v3/zoho-user-list.html), and a user gets
// notifications once a click-to-dial URI is registered for them
// (https://zoho.com/phonebridge/developer/v3/clicktodial.html: "Both incoming and
// outgoing notifications will be enabled for the mentioned users").

// PhoneBridgeUser is one user of the org's PhoneBridge.
type PhoneBridgeUser struct {
	ID    string `json:"zohouser"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// IntegratePhoneBridge enables calltrack as the org's PhoneBridge provider
// (POST /phonebridge/v3/integrate). An org has one provider: another one enabled is
// DIFFERENT_PROVIDER_ALREADY_ENABLED, a permanent error.
func (a *Adapter) IntegratePhoneBridge(ctx context.Context) error {
	const op = "zoho: phonebridge integrate"
	r, err := a.send(ctx, op, http.MethodPost, "/phonebridge/v3/integrate", "application/x-www-form-urlencoded", nil)
	if err != nil {
		return err
	}
	return pbStatus(op, r)
}

// PhoneBridge user list paging (https://www.zoho.com/phonebridge/developer/v3/zoho-user-list.html:
// page from 1, perPage 1 to 1000). maxUserPages bounds the walk: 100,000 users.
const (
	pbUsersPerPage = 1000
	maxUserPages   = 100
)

// PhoneBridgeUsers lists the org's PhoneBridge users (GET /phonebridge/v3/users), every
// page of them, until an empty page: a page shorter than perPage is not taken for the
// last, in case Zoho caps perPage below what was asked. A list past maxUserPages is an
// error, not a partial list (the setup replaces its stored map with what this returns).
func (a *Adapter) PhoneBridgeUsers(ctx context.Context) ([]PhoneBridgeUser, error) {
	const op = "zoho: phonebridge users"
	var out []PhoneBridgeUser
	for page := 1; page <= maxUserPages; page++ {
		path := fmt.Sprintf("/phonebridge/v3/users?page=%d&perPage=%d", page, pbUsersPerPage)
		r, err := a.send(ctx, op, http.MethodGet, path, "", nil)
		if err != nil {
			return nil, err
		}
		if err := pbStatus(op, r); err != nil {
			return nil, err
		}
		var body struct {
			Users []map[string]any `json:"users"`
		}
		if err := json.Unmarshal(r.data, &body); err != nil {
			return nil, &crm.Error{Op: op, Status: r.resp.StatusCode, Message: "decoding response", Err: err}
		}
		for _, u := range body.Users {
			id := str(u["zohouser"])
			if id == "" {
				id = str(u["id"])
			}
			if id != "" {
				out = append(out, PhoneBridgeUser{ID: id, Name: str(u["name"]), Email: str(u["email"])})
			}
		}
		if len(body.Users) == 0 {
			return out, nil
		}
	}
	return nil, &crm.Error{Op: op, Message: fmt.Sprintf("more than %d pages of PhoneBridge users", maxUserPages), Permanent: true}
}

// RegisterClickToDial registers uri as the click-to-dial URI of PhoneBridge user
// zohouser (POST /phonebridge/v3/clicktodial, form-encoded), which also enables the
// user's call notifications. authParam, when set, is sent back by Zoho with each
// click (the authorizationparam the callback checks).
func (a *Adapter) RegisterClickToDial(ctx context.Context, zohouser, uri, authParam string) error {
	const op = "zoho: phonebridge clicktodial"
	form := url.Values{"zohouser": {zohouser}, "clicktodialuri": {uri},
		"clicktodialparam": {`[{"name":"tonumber","value":"$to"},{"name":"zohouser","value":"$zohouser"}]`}}
	if authParam != "" {
		b, _ := json.Marshal(map[string]string{"name": "token", "value": authParam})
		form.Set("authorizationparam", string(b))
	}
	r, err := a.send(ctx, op, http.MethodPost, "/phonebridge/v3/clicktodial", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if err != nil {
		return err
	}
	return pbStatus(op, r)
}

// pbStatus is a PhoneBridge answer's error: a non-2xx, or a body whose status is not
// success (PROVIDER_NOT_REGISTERED, DIFFERENT_PROVIDER_ALREADY_ENABLED, ... are permanent).
func pbStatus(op string, r reply) error {
	if r.resp.StatusCode < 200 || r.resp.StatusCode > 299 {
		return apiError(op, r)
	}
	var body struct {
		Status string `json:"status"`
		Code   string `json:"code"`
	}
	if json.Unmarshal(r.data, &body) == nil && body.Status != "" && !strings.EqualFold(body.Status, "success") {
		return &crm.Error{Op: op, Status: r.resp.StatusCode, Code: body.Code, Message: "status " + body.Status, Permanent: true}
	}
	return nil
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

// ClickToDialError tells Zoho that a click placed no call
// (POST /phonebridge/v3/clicktodialerror, form-encoded): code is one of busy, invalid,
// blocked, notavailable, noanswer, rejected; from (the agent's number) and to (the
// customer's) in E.164 are mandatory; zohouser and message are optional (Zoho
// PhoneBridge v3, "Click to Dial Error API").
func (a *Adapter) ClickToDialError(ctx context.Context, code, from, to, zohouser, message string) error {
	const op = "zoho: phonebridge clicktodialerror"
	form := url.Values{"code": {code}, "from": {from}, "to": {to}}
	if zohouser != "" {
		form.Set("zohouser", zohouser)
	}
	if message != "" {
		form.Set("message", message)
	}
	// url.Values encodes "+" as %2B, as the docs ask of from and to.
	r, err := a.send(ctx, op, http.MethodPost, "/phonebridge/v3/clicktodialerror", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if err != nil {
		return err
	}
	return pbStatus(op, r)
}
