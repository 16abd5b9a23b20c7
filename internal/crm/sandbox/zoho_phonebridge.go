package sandbox

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// PhoneBridge, as strict as Zoho's PhoneBridge v3 docs: nothing works until the
// provider is integrated (PROVIDER_NOT_REGISTERED, 400:
// https://www.zoho.com/phonebridge/developer/v3/integration.html); an org has one
// provider (DIFFERENT_PROVIDER_ALREADY_ENABLED — Zoho documents 403, the sandbox
// answers 400); callnotify's zohouser is a PhoneBridge user id
// (https://www.zoho.com/phonebridge/developer/v3/zoho-user-list.html), and a user gets
// notifications once its click-to-dial URI is registered
// (https://zoho.com/phonebridge/developer/v3/clicktodial.html); PhoneBridge logs a
// call itself (a Calls record: https://www.zoho.com/desk/help/api/phonebridge/v1/,
// "Call logging") — on the ended/missed notifications is unconfirmed, the stricter
// reading — which is why calltrack never sends them. See docs/crm-contracts.md.

// PhoneBridgeUser is a user of the org's PhoneBridge (GET /phonebridge/v3/users):
// its id is what callnotify's zohouser names — not the CRM user id.
type PhoneBridgeUser struct {
	ZohoUser string `json:"zohouser"`
	Name     string `json:"name"`
	Email    string `json:"email"`
}

// ClickToDial is a registered click-to-dial URI.
type ClickToDial struct {
	URI       string `json:"clicktodialuri"`
	Param     string `json:"clicktodialparam,omitempty"`
	AuthParam string `json:"authorizationparam,omitempty"`
}

func (z *Zoho) pbNotRegistered(w http.ResponseWriter) bool {
	z.mu.Lock()
	ok := z.pbIntegrated
	z.mu.Unlock()
	if !ok {
		zohoFail(w, http.StatusBadRequest, "PROVIDER_NOT_REGISTERED", "PhoneBridge provider is not registered or not enabled for this org", nil)
	}
	return !ok
}

func (z *Zoho) pbIntegrate(w http.ResponseWriter, r *http.Request) {
	if z.opts.OtherPhoneBridgeProvider {
		zohoFail(w, http.StatusBadRequest, "DIFFERENT_PROVIDER_ALREADY_ENABLED", "another PhoneBridge provider is enabled for this org", nil)
		return
	}
	z.mu.Lock()
	z.pbIntegrated = true
	z.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "success", "code": "SUCCESS"})
}

func (z *Zoho) pbUsers(w http.ResponseWriter, r *http.Request) {
	if z.pbNotRegistered(w) {
		return
	}
	// Paged: page from 1, perPage 1 to 1000 (https://www.zoho.com/phonebridge/developer/v3/zoho-user-list.html).
	// The page does not give perPage's default; the sandbox takes 200, its sample's, so
	// a client that reads one page of a big org misses users here as it would there.
	page, perPage := 1, 200
	for _, p := range []struct {
		name string
		v    *int
		max  int
	}{{"page", &page, 0}, {"perPage", &perPage, 1000}} {
		raw := r.URL.Query().Get(p.name)
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || (p.max > 0 && n > p.max) {
			zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "invalid value for "+p.name, map[string]any{"param_name": p.name})
			return
		}
		*p.v = n
	}
	z.mu.Lock()
	all := z.pbUserList
	from := min((page-1)*perPage, len(all))
	users := slices.Clone(all[from:min(from+perPage, len(all))])
	z.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
}

func (z *Zoho) pbClickToDial(w http.ResponseWriter, r *http.Request) {
	if z.pbNotRegistered(w) {
		return
	}
	if err := r.ParseForm(); err != nil {
		zohoFail(w, http.StatusBadRequest, "SC_BAD_REQUEST", "malformed form body", nil)
		return
	}
	user, uri := r.PostForm.Get("zohouser"), r.PostForm.Get("clicktodialuri")
	switch {
	case user == "" || uri == "":
		zohoFail(w, http.StatusBadRequest, "REQUIRED_PARAM_MISSING", "zohouser and clicktodialuri are required", nil)
		return
	case !strings.HasPrefix(uri, "https://") && !strings.HasPrefix(uri, "http://"):
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "clicktodialuri must be an http(s) URL", map[string]any{"param": "clicktodialuri"})
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if !slices.ContainsFunc(z.pbUserList, func(u PhoneBridgeUser) bool { return u.ZohoUser == user }) {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "zohouser is not a PhoneBridge user", map[string]any{"param": "zohouser"})
		return
	}
	z.pbDial[user] = ClickToDial{URI: uri, Param: r.PostForm.Get("clicktodialparam"), AuthParam: r.PostForm.Get("authorizationparam")}
	writeJSON(w, http.StatusOK, map[string]string{"status": "success", "code": "SUCCESS"})
}

// ClickToDials returns the registered click-to-dial URIs by PhoneBridge user.
func (z *Zoho) ClickToDials() map[string]ClickToDial {
	z.mu.Lock()
	defer z.mu.Unlock()
	out := make(map[string]ClickToDial, len(z.pbDial))
	for k, v := range z.pbDial {
		out[k] = v
	}
	return out
}

// AddPhoneBridgeUser adds (or replaces) a PhoneBridge user.
func (z *Zoho) AddPhoneBridgeUser(u PhoneBridgeUser) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.pbUserList = slices.DeleteFunc(z.pbUserList, func(x PhoneBridgeUser) bool { return x.ZohoUser == u.ZohoUser })
	z.pbUserList = append(z.pbUserList, u)
}

// putPBUser serves PUT /phonebridge/users/{id} (control): {"name","email"}.
func (z *Zoho) putPBUser(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := decodeStrict(r, &b); err != nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "bad PhoneBridge user body: "+err.Error(), nil)
		return
	}
	u := PhoneBridgeUser{ZohoUser: r.PathValue("id"), Name: b.Name, Email: b.Email}
	z.AddPhoneBridgeUser(u)
	writeJSON(w, http.StatusOK, u)
}
