// Package popup tells a CRM about a live call so that the CRM shows the mapped
// user a pop-up while the call rings, is answered and ends. Each CRM with a
// telephony API gets a Notifier (Zoho: PhoneBridge callnotify); a CRM without one
// (Kylas) gets Nop.
package popup

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
)

// Notifier shows one CRM user a live call. Errors are crm.Error values, so the
// caller can tell transient from permanent as for writes.
type Notifier interface {
	Notify(ctx context.Context, ev call.Live, owner call.Owner) error
}

// Nop is the Notifier of a CRM without a pop-up API: it does nothing.
type Nop struct{}

// Notify implements Notifier.
func (Nop) Notify(context.Context, call.Live, call.Owner) error { return nil }

// CallNotifier posts a PhoneBridge callnotify form with the tenant's Zoho
// credentials; *zoho.Adapter implements it.
type CallNotifier interface {
	CallNotify(ctx context.Context, form url.Values) error
}

// PhoneBridge is the Zoho CRM Notifier: POST /phonebridge/v3/callnotify with
// type (received / dialed), state, id (our call id), from / to (E.164), zohouser
// (the owner's PhoneBridge user id, from the setup's map) and start_time (GMT,
// yyyy-MM-dd HH:mm:ss).
//
// Only ringing and answered are sent. PhoneBridge logs a call itself (a Calls
// record) when told it ended or was missed; calltrack's writer owns the call's Calls
// record (with owner, relation, disposition and recording), so the notifier never
// sends those states and the call is logged once.
type PhoneBridge struct {
	API            CallNotifier
	Users          PhoneBridgeUsers // CRM user → PhoneBridge user; nil: the CRM user id is sent
	DefaultCountry string           // calling code for numbers without one; default 91
}

// ErrNoNumber means the event lacks a number PhoneBridge requires (from and to
// are mandatory): nothing to show, and retrying cannot change that.
var ErrNoNumber = errors.New("popup: the live call has no customer or agent number")

// Notify implements Notifier. Ended and missed calls are not sent (see PhoneBridge).
func (p PhoneBridge) Notify(ctx context.Context, ev call.Live, owner call.Owner) error {
	const op = "zoho: phonebridge callnotify"
	if ev.State == call.Ended || ev.State == call.LiveMissed {
		return nil
	}
	zohouser := owner.CRMUserID
	if p.Users != nil {
		pb, ok, err := p.Users.PhoneBridgeUser(ctx, owner.CRMUserID)
		switch {
		case err != nil:
			return &crm.Error{Op: op, Message: "PhoneBridge user map", Err: err}
		case !ok:
			return &crm.Error{Op: op, Err: ErrNoPhoneBridgeUser, Permanent: true}
		}
		zohouser = pb
	}
	// The owner stays the CRM user: the agent's number is found by it (ev.Owners
	// holds CRM user ids); the PhoneBridge id is only what is sent as zohouser.
	form, err := p.Form(ev, owner, zohouser)
	if err != nil {
		return &crm.Error{Op: op, Message: err.Error(), Err: err, Permanent: true}
	}
	return p.API.CallNotify(ctx, form)
}

// Form is the callnotify body for ev shown to owner: the agent's number is the one
// of the agent mapped to owner (owner.CRMUserID is the CRM user id, as in
// ev.Owners), and zohouser — the owner's PhoneBridge user id — is sent as is (none
// when empty).
func (p PhoneBridge) Form(ev call.Live, owner call.Owner, zohouser string) (url.Values, error) {
	customer := phone.E164(ev.CallerNumber, p.DefaultCountry)
	agent := p.agentNumber(ev, owner)
	if customer == "" || agent == "" {
		return nil, ErrNoNumber
	}
	f := url.Values{"id": {ev.CallID}, "zohouser": {zohouser}}
	if ev.Direction == call.Outgoing {
		f.Set("type", "dialed")
		f.Set("from", agent)
		f.Set("to", customer)
	} else {
		f.Set("type", "received")
		f.Set("from", customer)
		f.Set("to", agent)
	}
	f.Set("state", state(ev))
	start := ev.CallTime
	if start.IsZero() {
		start = ev.ReceivedAt
	}
	if !start.IsZero() {
		f.Set("start_time", start.UTC().Format(time.DateTime))
	}
	if zohouser == "" {
		f.Del("zohouser")
	}
	return f, nil
}

// state maps our live state to PhoneBridge's. A missed dialed call is the
// customer's "noanswer".
func state(ev call.Live) string {
	switch ev.State {
	case call.LiveMissed:
		if ev.Direction == call.Outgoing {
			return "noanswer"
		}
		return "missed"
	case call.LiveAnswered:
		return "answered"
	case call.Ended:
		return "ended"
	}
	return "ringing"
}

// agentNumber is the number of the agent the owner is: ingest lists the mapped
// agents and their owners side by side (Agents[i] is Owners[i]); lacking that,
// the only agent phone rung, else the DID (the number the customer dialled).
func (p PhoneBridge) agentNumber(ev call.Live, owner call.Owner) string {
	norm := func(s string) string { return phone.E164(s, p.DefaultCountry) }
	i := slices.IndexFunc(ev.Owners, func(o call.Owner) bool { return o.CRMUserID == owner.CRMUserID })
	if i >= 0 && i < len(ev.Agents) && norm(ev.Agents[i].Phone) != "" {
		return norm(ev.Agents[i].Phone)
	}
	if len(ev.AgentPhones) == 1 && norm(ev.AgentPhones[0]) != "" {
		return norm(ev.AgentPhones[0])
	}
	return norm(ev.DID)
}
