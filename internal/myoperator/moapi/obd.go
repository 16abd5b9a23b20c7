package moapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OBD is MyOperator's outbound-call API (POST https://obd-api.myoperator.co/obd-api-v1,
// the "Campaigns API"): a peer-to-peer call (type "1") rings the agent named by user_id
// first, then the customer, and bridges them. Auth is the x-api-key header plus the
// account's company_id and secret_token in the body; none of them reaches an error or a
// log. Contract and sources: docs/myoperator-api.md, "Outbound calls".
type OBD struct {
	URL             string // tenant click_to_call.obd_url
	APIKey          string // x-api-key
	SecretToken     string // secret_token
	CompanyID       string // company_id
	PublicIVRID     string // public_ivr_id: the outbound campaign
	CallerID        string // optional caller_id
	MaxCallDuration int    // optional max_call_duration (s), ≤ 5400
	HTTP            *http.Client
}

// Dial is one peer-to-peer call request.
type Dial struct {
	UserID      string // the agent's MyOperator user id: rung first, the call is logged as theirs
	Number      string // the customer, E.164 (+<country><number>)
	ReferenceID string // ours, unique per request: a repeat is refused (403); comes back on the call's webhooks
}

// OBDType is the peer-to-peer call type ("1"; "2" would be an IVR campaign).
const OBDType = "1"

// Place asks MyOperator to place the call and returns its unique_id. MyOperator only
// queues the call: whether the agent or the customer answers comes back through the
// webhooks. Errors are *Error: 4xx and application errors (status "error") are
// Permanent, with MyOperator's details as the message.
func (o *OBD) Place(ctx context.Context, d Dial) (string, error) {
	const op = "moapi: outbound call"
	if o.APIKey == "" || o.SecretToken == "" || o.PublicIVRID == "" || o.CompanyID == "" {
		return "", &Error{Op: op, Message: "click-to-call is not configured", Permanent: true}
	}
	body := map[string]any{"company_id": o.CompanyID, "secret_token": o.SecretToken, "type": OBDType,
		"user_id": d.UserID, "number": d.Number, "public_ivr_id": o.PublicIVRID, "reference_id": d.ReferenceID}
	if o.CallerID != "" {
		body["caller_id"] = o.CallerID
	}
	if o.MaxCallDuration > 0 {
		body["max_call_duration"] = o.MaxCallDuration // an integer: integrators found a string refused
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", &Error{Op: op, Err: err, Permanent: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(b))
	if err != nil {
		return "", &Error{Op: op, Err: errors.New("bad OBD URL"), Permanent: true}
	}
	req.Header.Set("x-api-key", o.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "calltrack")
	hc := o.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return "", &Error{Op: op, Err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "", &Error{Op: op, Status: res.StatusCode, Err: err}
	}
	var ans struct {
		envelope
		UniqueID scalar `json:"unique_id"`
	}
	decodeErr := json.Unmarshal(raw, &ans)
	if res.StatusCode/100 != 2 || ans.failed() {
		e := &Error{Op: op, Status: res.StatusCode, Message: clean(ans.message(), o.SecretToken, o.APIKey), Permanent: permanent(res.StatusCode)}
		if res.StatusCode == http.StatusTooManyRequests {
			e.RetryAfter = retryAfter(res.Header.Get("Retry-After"), time.Now())
		}
		if e.Message == "" {
			e.Message = http.StatusText(res.StatusCode)
		}
		return "", e
	}
	if decodeErr != nil || !strings.EqualFold(ans.Status, "success") {
		return "", &Error{Op: op, Status: res.StatusCode, Message: "unexpected answer (no status success)", Err: decodeErr}
	}
	return string(ans.UniqueID), nil
}

// clean keeps secrets out of a message MyOperator echoes back.
func clean(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
