package e2e

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"
)

// Agents of the test tenant.
type agent struct{ id, name, email, ext, phone10 string }

var (
	sumit  = agent{"5cd40f6556f2f124", "Sumit", "sumit.arya@example.com", "10", "8586848544"}
	priya  = agent{"5cd40f6556f2f125", "Priya", "priya@example.com", "11", "8586848545"}
	ravi   = agent{"5cd40f6556f2f126", "Ravi", "ravi@example.com", "12", "8586848546"}
	nobody = agent{"5cd40f6556f2f999", "Unmapped", "nobody@example.com", "19", "8586848599"}
)

func (a agent) rr() map[string]any {
	return map[string]any{"_id": a.id, "_na": a.name, "_em": a.email, "_ex": a.ext, "_ct": a.phone10, "_nr": "+91" + a.phone10}
}

type leg struct {
	agents   []agent
	answered bool
}

type callSpec struct {
	uid       string
	logID     string
	outgoing  bool
	status    int // 1 answered, 2 missed, 3 voicemail
	c2c       bool
	legs      []leg
	recording bool
	stringy   bool      // numbers as strings
	caller    string    // the customer's 10-digit Indian number; default 9711636496
	start     time.Time // when the call began; default 2026-11-20 10:00 UTC
}

var seq atomic.Int64

// newUID returns a fresh MyOperator-style call UID.
func newUID() string {
	return fmt.Sprintf("n2.%d.%d", time.Now().Unix(), 1000000+seq.Add(1))
}

// afterCall renders an afterCall payload in MyOperator's v1 shape.
func afterCall(c callSpec) string {
	if c.logID == "" {
		c.logID = fmt.Sprintf("%016x", time.Now().UnixNano()+seq.Add(1))
	}
	num := func(v int) any {
		if c.stringy {
			return fmt.Sprint(v)
		}
		return v
	}
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).Unix()
	if !c.start.IsZero() {
		start = c.start.Unix()
	}
	ev := 1
	if c.outgoing {
		ev = 2
	}
	ns := "0"
	if c.c2c {
		ns = "1"
	}
	var legs []map[string]any
	var us []map[string]any
	for i, l := range c.legs {
		var rr []map[string]any
		for _, a := range l.agents {
			rr = append(rr, a.rr())
		}
		ds, ac := "NOANSWER", "missed"
		if l.answered {
			ds, ac = "ANSWER", "received"
			us = append(us, map[string]any{"ky": l.agents[len(l.agents)-1].id, "vl": "received"})
		}
		legs = append(legs, map[string]any{"_rst": "2026-11-20 10:00:05", "_ds": ds, "_did": "1161568087", "_rr": rr, "_tt": []any{},
			"_su": num(map[bool]int{true: 1, false: 2}[l.answered]), "_st": num(int(start) + 5 + i*10), "_et": num(int(start) + 15 + i*10), "_dr": "00:00:10", "_ac": ac})
	}
	if c.caller == "" {
		c.caller = "9711636496"
	}
	p := map[string]any{
		"_ai": c.logID, "_ci": companyID, "_cr": c.caller, "_cl": "+91" + c.caller, "_cy": "91", "_se": "DL, IN",
		"_st": num(int(start)), "_et": num(int(start) + 45), "_ts": num(int(start) + 46), "_dr": "00:00:45", "_drm": 0.75,
		"_ty": num(1), "_ev": num(ev), "_su": num(c.status), "_ns": ns, "_dn": "sales", "_di": "5cd40f6559784843",
		"_pm": []map[string]any{{"ky": "ui", "vl": c.uid}, {"ky": "is", "vl": "0"}}, "_cn": []any{}, "_ld": legs, "_us": us,
		"_fn": "", "_fu": "",
	}
	if c.recording {
		p["_fn"] = "rec-" + c.logID + ".mp3"
		p["_fu"] = "https://app.myoperator.co/audio/rec-" + c.logID
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// inCall renders an inCall payload.
func inCall(uid string, state int, agents ...agent) string {
	users := []string{}
	for _, a := range agents {
		users = append(users, "91"+a.phone10)
	}
	b, _ := json.Marshal(map[string]any{"id": "5f25296c4122c135", "uid": uid, "company_id": companyID, "clid_raw": "919711636496",
		"clid": "9711636496", "rdnis": "unknown", "call_state": fmt.Sprint(state), "event": "1", "users": users,
		"created": "2026-11-20 10:00:00", "call_time": "2026-11-20 10:00:00"})
	return string(b)
}
