package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/provisional"
)

// v2Leg is an agent leg of a Webhook v2 call.
type v2Leg struct {
	a        agent
	answered bool
}

// uuid is the agent's v2 agent.uuid: not the v1 16-hex _id, so lookups fall back
// to the email, then the phone.
func (a agent) uuid() string { return "u-" + a.id }

// v2Event renders a Webhook v2 envelope around payload.
func v2Event(eventType, session string, payload map[string]any) string {
	b, _ := json.Marshal(map[string]any{
		"event_id": fmt.Sprintf("ev-%d", seq.Add(1)), "company_id": companyID, "event_type": eventType,
		"event_sequence": 1, "event_version": 1, "timestamp": "2026-11-20T10:01:00.000Z", "channel": "call",
		"direction": "incoming", "session_id": session, "system_identifier": nil,
		"customer_identifier": "+919711636496", "payload": payload,
	})
	return string(b)
}

// v2Call renders a call.summary (agents with their agent object) or call.end
// (agents by phone only) of an incoming call.
func v2Call(eventType, session, status string, legs ...v2Leg) string {
	ls := []any{map[string]any{"leg_index": 1, "type": "customer", "phone_number": "+919711636496", "result": "connected"}}
	for i, l := range legs {
		res, ds := "not_answered", "NOANSWER"
		if l.answered {
			res, ds = "answered", "ANSWER"
		}
		leg := map[string]any{"leg_index": i + 2, "type": "agent", "phone_number": "+91" + l.a.phone10, "result": res, "dial_status": ds}
		if eventType == "call.summary" {
			leg["agent"] = map[string]any{"uuid": l.a.uuid(), "name": l.a.name, "email": l.a.email, "contact": l.a.phone10, "extension": l.a.ext}
		}
		ls = append(ls, leg)
	}
	return v2Event(eventType, session, map[string]any{
		"id": session, "direction": "incoming", "customer_number": "+919711636496", "status": status,
		"started_at": "2026-11-20T10:00:00+00:00", "ended_at": "2026-11-20T10:00:45+00:00", "duration": 45,
		"category": "incoming", "recording_filename": "v2-" + session + ".mp3", "legs": ls,
	})
}

// postV2 posts a v2 event with the webhook token set by auth (default ?token=).
func (s *stack) postV2(body string, auth ...func(*http.Request)) response {
	req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/webhooks/myoperator/"+tenantID+"/v2", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if len(auth) == 0 {
		req.URL.RawQuery = "token=" + url.QueryEscape(token)
	}
	for _, f := range auth {
		f(req)
	}
	return s.do(req)
}

// writerSaw waits until the writer handled n more redeliveries of call logs than before.
func (s *stack) writerSaw(before float64, n int) {
	s.t.Helper()
	waitFor(s.t, "writer consumed the redelivered call log", func() bool {
		return testutil.ToFloat64(s.app.Metrics.WriterOutcomes.WithLabelValues(tenantID, "log", "duplicate")) >= before+float64(n)
	})
}

func (s *stack) duplicates() float64 {
	return testutil.ToFloat64(s.app.Metrics.WriterOutcomes.WithLabelValues(tenantID, "log", "duplicate"))
}

func notes(r sandbox.KylasCallLog) string {
	var out []string
	for _, n := range r.Notes {
		out = append(out, n.Description)
	}
	return strings.Join(out, "\n")
}

var noRedirect = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// A tenant migrating to Webhook v2, as the issue checks it: summary → one record of the
// mapped agent's user; redeliveries and the v1 afterCall of the same call add nothing;
// a disposition lands on the record; its recording link redirects to audio and a
// changed signature answers 403; a call.end alone is written after the wait.
func TestWebhookV2(t *testing.T) {
	// Long enough that a summary posted right after its call.end is in time on a loaded
	// 2-core CI box (1 s was not); short enough to keep the test quick.
	const wait = 3 * time.Second
	s := newStack(t, stackOpts{summaryWait: wait, durableLinks: true})
	s.mapAgent(sumit.id, "1001", sumit.email, "+91"+sumit.phone10)
	s.mapAgent(priya.id, "1002", priya.email)
	s.mapAgent(ravi.id, "1003", "", "+91"+ravi.phone10)

	uid := newUID()
	summary := v2Call("call.summary", uid, "bridged", v2Leg{a: priya}, v2Leg{a: sumit, answered: true})
	var rec sandbox.KylasCallLog

	t.Run("summary: one record owned by the answering agent's CRM user", func(t *testing.T) {
		r := s.postV2(summary)
		require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
		assert.Equal(t, map[string]any{"status": "accepted", "tenant": tenantID, "call_id": uid, "event_type": "call.summary"}, r.Body)
		rec = s.waitRecords(uid, 1, within)[0]
		assert.EqualValues(t, 1001, rec.Owner.ID, "sumit answered (found by email: his v2 uuid is not his v1 id)")
		assert.Equal(t, "connected", rec.Outcome)
		assert.Equal(t, "incoming", rec.CallType)
		assert.Equal(t, "+919711636496", rec.PhoneNumber)
		assert.Equal(t, 45, rec.Duration)
		tr := s.waitStatus(uid, "written", within)
		assert.Equal(t, map[string]any{"crm_user_id": "1001"}, tr["owner"])
	})

	t.Run("redelivered summary, and the v1 afterCall of the same call: still one record", func(t *testing.T) {
		r := s.postV2(summary)
		require.Equal(t, http.StatusOK, r.Status)
		assert.Equal(t, "duplicate", r.Body["status"], "same event_id")

		// The same summary as a new event (new event_id), and the call's v1 afterCall.
		before := s.duplicates()
		again := v2Call("call.summary", uid, "bridged", v2Leg{a: priya}, v2Leg{a: sumit, answered: true})
		require.Equal(t, "accepted", s.postV2(again).Body["status"])
		const v1LogID = "5f114f490dbe0001"
		v1 := afterCall(callSpec{uid: uid, logID: v1LogID, status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}})
		r = s.postForm("aftercall", v1, token)
		require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
		assert.Equal(t, "accepted", r.Body["status"])
		s.writerSaw(before, 2)
		assert.Len(t, s.records(uid), 1, "CRM records of the call")
		assert.EqualValues(t, 1001, s.records(uid)[0].Owner.ID)
		// The afterCall's trace write (its log id) is in: the call's page still shows the
		// agent the call was attributed to, the summary's (by uuid), not the afterCall's.
		waitFor(t, "the afterCall's trace write", func() bool { return s.trace(uid).Body["log_id"] == v1LogID })
		assert.Equal(t, sumit.uuid(), s.trace(uid).Body["agent"])
	})

	t.Run("disposition lands on the existing record", func(t *testing.T) {
		r := s.postV2(v2Event("call.disposition", uid, map[string]any{"id": uid,
			"disposition": map[string]any{"id": "d1", "name": "Interested"}, "comment": "demo on Monday"}))
		require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
		waitFor(t, "disposition in the record's notes", func() bool {
			recs := s.records(uid)
			return len(recs) == 1 && strings.Contains(notes(recs[0]), "Disposition: Interested — demo on Monday")
		})
		assert.Len(t, s.records(uid), 1)
		assert.EqualValues(t, 1001, s.records(uid)[0].Owner.ID)
	})

	t.Run("recording link redirects to audio; a changed signature is refused", func(t *testing.T) {
		require.NotNil(t, rec.CallRecording)
		link := s.records(uid)[0].CallRecording.URL
		require.Regexp(t, `^`+regexp.QuoteMeta(s.api.URL+"/r/"+tenantID+"/"+uid+"/")+`[A-Za-z0-9_-]{16}$`, link, "short: the call, not the file")

		// A link checker's HEAD: valid, and MyOperator is not asked.
		res, err := noRedirect.Head(link)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Zero(t, s.mo.RecordingLinks())

		res, err = noRedirect.Get(link)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusFound, res.StatusCode)
		loc := res.Header.Get("Location")
		assert.True(t, strings.HasPrefix(loc, s.moSrv.URL+"/audio/v2-"+uid+".mp3?"), loc)

		res, err = http.Get(link) // as a CRM user's browser: follow it
		require.NoError(t, err)
		audio, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "audio/"), res.Header.Get("Content-Type"))
		assert.Equal(t, "RIFF", string(audio[:4]))
		assert.Equal(t, 1, s.mo.RecordingLinks(), "MyOperator's fresh link is cached (Redis) for its validity")

		sig := []byte(link)
		sig[len(sig)-4] ^= 1 // flip one bit of one character
		req, _ := http.NewRequest(http.MethodGet, string(sig), nil)
		r := s.do(req)
		assert.Equal(t, http.StatusForbidden, r.Status)
		assert.Equal(t, map[string]any{"error": map[string]any{"code": "forbidden", "message": "missing or wrong recording link signature"}}, r.Body)
		req, _ = http.NewRequest(http.MethodGet, strings.Replace(link, "/r/"+tenantID+"/"+uid+"/", "/r/"+tenantID+"/"+uid+"0/", 1), nil)
		assert.Equal(t, http.StatusForbidden, s.do(req).Status)
	})

	t.Run("v1 recording (_fn) gets the same durable link", func(t *testing.T) {
		spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}, recording: true}
		require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
		link := s.waitRecords(spec.uid, 1, within)[0].CallRecording.URL
		require.True(t, strings.HasPrefix(link, s.api.URL+"/r/"+tenantID+"/"+spec.uid+"/"), link)
		res, err := http.Get(link)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "audio/"))
	})

	var endUID string
	t.Run("call.end with no summary: written after the wait, with the agent found by phone", func(t *testing.T) {
		endUID = newUID()
		posted := time.Now()
		r := s.postV2(v2Call("call.end", endUID, "bridged", v2Leg{a: priya}, v2Leg{a: ravi, answered: true}))
		require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
		assert.Equal(t, true, r.Body["provisional"])
		assert.Empty(t, s.records(endUID), "not written before the wait")
		recs := s.waitRecords(endUID, 1, within)
		assert.GreaterOrEqual(t, time.Since(posted), wait, "written only after the wait")
		assert.EqualValues(t, 1003, recs[0].Owner.ID, "ravi, mapped by phone only")
		tr := s.waitStatus(endUID, "written", within)
		assert.Equal(t, map[string]any{"crm_user_id": "1003"}, tr["owner"])
	})

	t.Run("a summary after the call.end was written adds no record", func(t *testing.T) {
		before := s.duplicates()
		r := s.postV2(v2Call("call.summary", endUID, "bridged", v2Leg{a: priya}, v2Leg{a: ravi, answered: true}))
		require.Equal(t, "accepted", r.Body["status"])
		s.writerSaw(before, 1)
		assert.Len(t, s.records(endUID), 1)
	})

	t.Run("call.end then its summary in time: the summary is the record", func(t *testing.T) {
		// The case is decided by time: the summary must be answered (its trace stage
		// recorded) before the call.end's wait, counted from its receipt, is over. On a box
		// too busy to post two webhooks within the wait, the attempt proves nothing either
		// way and is made again with a new call (never more than 3 times).
		var id string
		for try := 1; ; try++ {
			id = newUID()
			// A disposition first too: it waits for the record.
			require.Equal(t, http.StatusOK, s.postV2(v2Event("call.disposition", id, map[string]any{"disposition": "Callback"})).Status)
			sent := time.Now()
			r := s.postV2(v2Call("call.end", id, "bridged", v2Leg{a: sumit, answered: true}))
			require.Equal(t, true, r.Body["provisional"])
			r = s.postV2(v2Call("call.summary", id, "bridged", v2Leg{a: priya, answered: true}))
			require.Equal(t, "accepted", r.Body["status"])
			if took := time.Since(sent); took < wait {
				break
			} else {
				require.Less(t, try, 3, "the box took %s to answer two webhooks, past the %s wait, three times", took, wait)
				t.Logf("call.end and summary answered %s apart, past the %s wait: trying again with another call", took, wait)
			}
		}
		recs := s.waitRecords(id, 1, within)
		assert.EqualValues(t, 1002, recs[0].Owner.ID, "attributed from the summary, not from call.end")
		assert.Contains(t, notes(recs[0]), "Disposition: Callback")
		held := s.readTopic(s.env.Topics.Held, 1, func(m kafka.Message) bool { return kafkabus.Header(m, kafkabus.HeaderCallID) == id })
		require.Len(t, held, 1, "the held call.end was on Kafka (published before its answer)")
		tr := s.waitStatus(id, "written", within)
		assert.Equal(t, map[string]any{"crm_user_id": "1002"}, tr["owner"])
		waitFor(t, "the held call.end dropped once its wait was over", func() bool {
			return slices.Contains(stages(s.trace(id).Body), provisional.StageDropped)
		})
		assert.Len(t, s.records(id), 1, "still one record")

		// A call.end that comes after its call's log is not held at all.
		r := s.postV2(v2Call("call.end", id, "bridged", v2Leg{a: sumit, answered: true}))
		assert.Equal(t, false, r.Body["provisional"])
	})

	t.Run("live events publish pop-ups with the rung agents' owners", func(t *testing.T) {
		id := newUID()
		r := s.postV2(v2Event("call.dial_begin", id, map[string]any{"legs": []any{
			map[string]any{"type": "agent", "phone_number": "+91" + sumit.phone10, "result": "ringing"}}}))
		require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
		msgs := s.readTopic(s.env.Topics.Live, 1, func(m kafka.Message) bool { return kafkabus.Header(m, kafkabus.HeaderCallID) == id })
		require.Len(t, msgs, 1)
		var live map[string]any
		require.NoError(t, json.Unmarshal(msgs[0].Value, &live))
		assert.Equal(t, "ringing", live["state"])
		assert.Equal(t, "myoperator.v2", live["source"])
		assert.Equal(t, []any{map[string]any{"crm_user_id": "1001", "email": sumit.email, "source": "manual"}}, live["owners"])
	})

	t.Run("unknown event types are accepted, counted and kept", func(t *testing.T) {
		body := `{"event_id":"wa-1","company_id":"` + companyID + `","event_type":"message.received","event_version":"1","channel":"whatsapp","payload":{"text":"hi"}}`
		r := s.postV2(body)
		require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
		assert.Equal(t, "kept", r.Body["status"])
		assert.Equal(t, "duplicate", s.postV2(body).Body["status"])
		assert.Equal(t, 1.0, testutil.ToFloat64(s.app.Metrics.UnknownV2Events.WithLabelValues(tenantID, "message.received")))
		msgs := s.readTopic(s.env.Topics.Rejected, 1, func(m kafka.Message) bool {
			return kafkabus.Header(m, kafkabus.HeaderReason) == "unknown_event_type"
		})
		require.Len(t, msgs, 1)
		assert.Equal(t, body, string(msgs[0].Value), "kept verbatim")
		assert.Equal(t, "message.received", kafkabus.Header(msgs[0], "event_type"))
	})

	t.Run("malformed events: 400, kept on the rejected topic; no body ever answers 5xx", func(t *testing.T) {
		body := `{"event_id":"bad-1","event_type":"call.summary","session_id":"` + newUID() + `","payload":{"status":"exploded","direction":"incoming"}}`
		r := s.postV2(body)
		require.Equal(t, http.StatusBadRequest, r.Status)
		assert.Equal(t, "malformed_payload", r.Body["error"].(map[string]any)["code"])
		assert.Contains(t, r.Body["error"].(map[string]any)["message"], `got "exploded"`)
		msgs := s.readTopic(s.env.Topics.Rejected, 1, func(m kafka.Message) bool {
			return kafkabus.Header(m, kafkabus.HeaderReason) == "malformed_payload" && kafkabus.Header(m, "kind") == "v2"
		})
		require.Len(t, msgs, 1)
		assert.Equal(t, body, string(msgs[0].Value))

		for _, junk := range []string{"", "null", "[]", "{", `{"event_type":7}`, `{"event_type":"call.end"}`, "\xff\xfe",
			`{"event_type":"call.summary","session_id":{"x":1},"payload":[]}`, `{"payload":"{\"id\":1}","event_type":"call.answered"}`,
			strings.Repeat(`{"a":`, 2000)} {
			r := s.postV2(junk)
			assert.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, r.Status, "%q → %v", junk, r.Body)
		}
	})

	t.Run("auth: the token in the query, X-Calltrack-Token, X-Api-Key, Bearer or Basic; else 401", func(t *testing.T) {
		ev := func() string { return v2Event("call.initiated", newUID(), map[string]any{}) }
		for name, auth := range map[string]func(*http.Request){
			"X-Calltrack-Token": func(r *http.Request) { r.Header.Set("X-Calltrack-Token", token) },
			"X-Api-Key":         func(r *http.Request) { r.Header.Set("X-Api-Key", token) },
			"Bearer":            func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
			"Basic":             func(r *http.Request) { r.SetBasicAuth("myoperator", token) },
			"api_key":           func(r *http.Request) { r.URL.RawQuery = "api_key=" + token },
		} {
			assert.Equal(t, http.StatusOK, s.postV2(ev(), auth).Status, name)
		}
		for name, auth := range map[string]func(*http.Request){
			"none":      func(*http.Request) {},
			"wrong key": func(r *http.Request) { r.Header.Set("X-Api-Key", "nope") },
			"wrong one of two": func(r *http.Request) {
				r.URL.RawQuery = "token=nope"
				r.Header.Set("Authorization", "Bearer nope")
			},
		} {
			r := s.postV2(ev(), auth)
			assert.Equal(t, http.StatusUnauthorized, r.Status, name)
			assert.Equal(t, "unauthorized", r.Body["error"].(map[string]any)["code"], name)
		}
		other := strings.Replace(ev(), companyID, "ffffffffffffffff", 1)
		r := s.postV2(other)
		assert.Equal(t, http.StatusForbidden, r.Status, "another company's event")
		assert.Equal(t, "wrong_company", r.Body["error"].(map[string]any)["code"])
	})
}

// A v2 agent is found by its uuid when the mapping knows it (user sync fills it; an
// admin may set it), even with no email or phone in common.
func TestWebhookV2AgentByUUID(t *testing.T) {
	s := newStack(t, stackOpts{})
	kiran := agent{"5cd40f6556f2f127", "Kiran", "kiran@example.com", "13", "8586848547"}
	s.ensureCRMUser("1004") // the mapped CRM user exists, as mapAgent ensures
	r := s.admin(http.MethodPut, "/mappings/"+kiran.id, map[string]any{"crm_user_id": "1004", "myoperator_uuid": kiran.uuid()})
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	session := newUID()
	require.Equal(t, http.StatusOK, s.postV2(v2Call("call.summary", session, "bridged", v2Leg{a: kiran, answered: true})).Status)
	recs := s.waitRecords(session, 1, within)
	assert.EqualValues(t, 1004, recs[0].Owner.ID)
}
