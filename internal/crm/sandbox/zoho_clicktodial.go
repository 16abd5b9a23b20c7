package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Click to dial, as Zoho PhoneBridge v3 documents it ("Click to Dial",
// "Click to Dial Error API"): a user clicks a number, PhoneBridge posts the call details
// to the provider's registered clicktodialuri — the registered clicktodialparam with
// $to and $zohouser filled in, and the authorizationparam — and a provider that
// cannot place the call reports it with POST /phonebridge/v3/clicktodialerror
// (form-encoded: code* busy|invalid|blocked|notavailable|noanswer|rejected, from* and
// to* in E.164, zohouser, message; 400 REQUIRED_PARAM_MISSING without a mandatory one).
// Where the docs are silent the sandbox takes the stricter reading: an unknown code,
// a number not in E.164 or an unknown zohouser is refused with INVALID_DATA; the
// click is a form-encoded POST.

// ClickToDialError is a clicktodialerror report as the sandbox keeps it.
type ClickToDialError struct {
	Code     string    `json:"code"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	ZohoUser string    `json:"zohouser,omitempty"`
	Message  string    `json:"message,omitempty"`
	At       time.Time `json:"at"`
}

var (
	clickToDialCodes = []string{"busy", "invalid", "blocked", "notavailable", "noanswer", "rejected"}
	zohoE164         = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

func (z *Zoho) routesClickToDial() {
	z.mux.HandleFunc("POST /phonebridge/v3/clicktodialerror", z.adapterCall(z.pbClickToDialError))
	// Control: no auth.
	z.mux.HandleFunc("POST /phonebridge/click", z.clickControl)
	z.mux.HandleFunc("GET /phonebridge/clicktodialerrors", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"errors": z.ClickToDialErrors()})
	})
}

func (z *Zoho) pbClickToDialError(w http.ResponseWriter, r *http.Request) {
	if z.pbNotRegistered(w) {
		return
	}
	if err := r.ParseForm(); err != nil {
		zohoFail(w, http.StatusBadRequest, "SC_BAD_REQUEST", "malformed form body", nil)
		return
	}
	f := r.PostForm
	e := ClickToDialError{Code: f.Get("code"), From: f.Get("from"), To: f.Get("to"), ZohoUser: f.Get("zohouser"), Message: f.Get("message"), At: time.Now()}
	switch {
	case e.Code == "" || e.From == "" || e.To == "":
		zohoFail(w, http.StatusBadRequest, "REQUIRED_PARAM_MISSING", "code, from and to are required", nil)
		return
	case !slices.Contains(clickToDialCodes, e.Code):
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "code must be one of "+strings.Join(clickToDialCodes, ", "), map[string]any{"param": "code"})
		return
	case !zohoE164.MatchString(e.From):
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "from must be in E.164 format", map[string]any{"param": "from"})
		return
	case !zohoE164.MatchString(e.To):
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "to must be in E.164 format", map[string]any{"param": "to"})
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if e.ZohoUser != "" && !slices.ContainsFunc(z.pbUserList, func(u PhoneBridgeUser) bool { return u.ZohoUser == e.ZohoUser }) {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "zohouser is not a PhoneBridge user", map[string]any{"param": "zohouser"})
		return
	}
	z.pbDialErrors = append(z.pbDialErrors, e)
	writeJSON(w, http.StatusOK, map[string]string{"status": "success", "code": "SUCCESS"})
}

// ClickToDialErrors returns the clicktodialerror reports received, oldest first.
func (z *Zoho) ClickToDialErrors() []ClickToDialError {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Clone(z.pbDialErrors)
}

// ClickResult is what the provider's clicktodialuri answered a click.
type ClickResult struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
	Text   string          `json:"text,omitempty"`
}

// Click plays a PhoneBridge user clicking number `to` in Zoho: PhoneBridge posts to
// the user's registered clicktodialuri. It fails when the user has no click-to-dial
// registration.
func (z *Zoho) Click(ctx context.Context, zohouser, to string) (ClickResult, error) {
	z.mu.Lock()
	reg, ok := z.pbDial[zohouser]
	z.mu.Unlock()
	if !ok {
		return ClickResult{}, fmt.Errorf("click-to-dial is not registered for PhoneBridge user %s", zohouser)
	}
	form := url.Values{}
	var params []struct{ Name, Value string }
	if reg.Param != "" {
		if err := json.Unmarshal([]byte(reg.Param), &params); err != nil {
			return ClickResult{}, fmt.Errorf("registered clicktodialparam is not a JSON array of {name, value}: %w", err)
		}
	}
	fill := strings.NewReplacer("$to", to, "$zohouser", zohouser)
	for _, p := range params {
		form.Set(p.Name, fill.Replace(p.Value))
	}
	if reg.AuthParam != "" {
		var a struct{ Name, Value string }
		if err := json.Unmarshal([]byte(reg.AuthParam), &a); err != nil {
			return ClickResult{}, fmt.Errorf("registered authorizationparam is not a JSON {name, value}: %w", err)
		}
		form.Set(a.Name, a.Value)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, reg.URI, strings.NewReader(form.Encode()))
	if err != nil {
		return ClickResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return ClickResult{}, fmt.Errorf("clicktodialuri: %w", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	out := ClickResult{Status: res.StatusCode}
	if json.Valid(bytes.TrimSpace(b)) && len(bytes.TrimSpace(b)) > 0 {
		out.Body = b
	} else {
		out.Text = string(b)
	}
	return out, nil
}

// clickControl serves POST /phonebridge/click (control): {"zohouser","to"} → what the
// clicktodialuri answered.
func (z *Zoho) clickControl(w http.ResponseWriter, r *http.Request) {
	var b struct {
		ZohoUser string `json:"zohouser"`
		To       string `json:"to"`
	}
	if err := decodeStrict(r, &b); err != nil || b.ZohoUser == "" || b.To == "" {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", `body must be {"zohouser":"...","to":"+91..."}`, nil)
		return
	}
	res, err := z.Click(r.Context(), b.ZohoUser, b.To)
	if err != nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
