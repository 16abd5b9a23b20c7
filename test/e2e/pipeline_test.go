package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/ingest"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/route"
)

// within bounds every wait for an effect; generous because CI runs packages side by side
// on 2 cores, and a wait that is met returns at once.
const within = 30 * time.Second

// Each afterCall shape and kind lands as one CRM record owned per the attribution rule.
func TestAfterCallAttribution(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.mapAgent(sumit.id, "1001", sumit.email, "+91"+sumit.phone10)
	s.mapAgent(priya.id, "1002", priya.email)
	s.mapAgent(ravi.id, "1003", "", "+91"+ravi.phone10)

	cases := []struct {
		name  string
		spec  callSpec
		post  func(payload string) response
		owner int64
		agent string
	}{
		{"answered, form field", callSpec{status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}, recording: true},
			func(p string) response { return s.postForm("aftercall", p, token) }, 1001, sumit.id},
		{"answered, raw JSON", callSpec{status: 1, legs: []leg{{agents: []agent{priya}, answered: true}}},
			func(p string) response { return s.postJSON("aftercall", p) }, 1002, priya.id},
		{"answered, wrapped JSON", callSpec{status: 1, legs: []leg{{agents: []agent{ravi}, answered: true}}},
			func(p string) response { return s.postJSON("aftercall", `{"myoperator":`+p+`}`) }, 1003, ravi.id},
		{"missed across two legs: last agent rung", callSpec{status: 2, legs: []leg{{agents: []agent{sumit}}, {agents: []agent{priya}}}},
			func(p string) response { return s.postForm("aftercall", p, token) }, 1002, priya.id},
		{"transfer: final answering agent", callSpec{status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}, {agents: []agent{ravi}, answered: true}}},
			func(p string) response { return s.postForm("aftercall", p, token) }, 1003, ravi.id},
		{"ring group: the one who received", callSpec{status: 1, legs: []leg{{agents: []agent{sumit, priya}, answered: true}}},
			func(p string) response { return s.postForm("aftercall", p, token) }, 1002, priya.id},
		{"outgoing click-to-call: placing agent", callSpec{outgoing: true, c2c: true, status: 1, legs: []leg{{agents: []agent{priya}, answered: true}}},
			func(p string) response { return s.postForm("aftercall", p, token) }, 1002, priya.id},
		{"strings for numbers", callSpec{status: 1, stringy: true, legs: []leg{{agents: []agent{sumit}, answered: true}}},
			func(p string) response { return s.postForm("aftercall", p, token) }, 1001, sumit.id},
		{"agent matched by phone only", callSpec{status: 3, legs: []leg{{agents: []agent{{id: "ffffffffffffffff", phone10: ravi.phone10}}}}},
			func(p string) response { return s.postForm("aftercall", p, token) }, 1003, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.uid = newUID()
			r := tc.post(afterCall(tc.spec))
			require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
			assert.Equal(t, "accepted", r.Body["status"])
			recs := s.waitRecords(tc.spec.uid, 1, within)
			assert.Equal(t, tc.owner, recs[0].Owner.ID, "owner of the CRM record")
			assert.Equal(t, "+919711636496", recs[0].PhoneNumber)
			if tc.spec.outgoing {
				assert.Equal(t, "outgoing", recs[0].CallType)
			} else {
				assert.Equal(t, "incoming", recs[0].CallType)
			}
			if tc.spec.recording {
				require.NotNil(t, recs[0].CallRecording)
				assert.Contains(t, recs[0].CallRecording.URL, "https://app.myoperator.co/audio/")
			}
			tr := s.waitStatus(tc.spec.uid, "written", within)
			assert.Equal(t, map[string]any{"crm_user_id": fmt.Sprint(recs[0].Owner.ID)}, tr["owner"])
		})
	}
}

// A redelivered webhook, in the same or another encoding, adds nothing.
func TestRedeliveryWritesOnce(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.mapAgent(sumit.id, "1001", sumit.email)
	spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}, recording: true}
	p := afterCall(spec)
	require.Equal(t, http.StatusOK, s.postForm("aftercall", p, token).Status)
	s.waitRecords(spec.uid, 1, within)
	r := s.postForm("aftercall", p, token)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "duplicate", r.Body["status"])
	r = s.postJSON("aftercall", p)
	assert.Equal(t, "duplicate", r.Body["status"])

	// Replaying the call-log event itself (as a topic replay would) writes nothing.
	msgs := s.readTopic(s.env.Topics.Log, 1, func(m kafka.Message) bool { return kafkabus.Header(m, kafkabus.HeaderCallID) == spec.uid })
	require.Len(t, msgs, 1, "one call-log event for the call")
	replay := kafka.Message{Topic: s.env.Topics.Log, Key: msgs[0].Key, Value: msgs[0].Value, Headers: msgs[0].Headers}
	require.NoError(t, s.app.Producer.Publish(t.Context(), replay, replay))
	// Poll until the writer consumed the replays (trace lists the redelivery), then count.
	waitDuplicates(t, s, 2)
	assert.Len(t, s.records(spec.uid), 1, "CRM records of the call")
}

// A recording that arrives after the call log updates the record, not a second one.
func TestLateRecordingUpdatesRecord(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.mapAgent(sumit.id, "1001", sumit.email)
	spec := callSpec{uid: newUID(), logID: "aaaaaaaaaaaa0001", status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
	recs := s.waitRecords(spec.uid, 1, within)
	assert.Nil(t, recs[0].CallRecording)

	spec.recording = true
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
	var rec string
	waitFor(t, "recording on the record", func() bool {
		recs = s.records(spec.uid)
		if len(recs) == 1 && recs[0].CallRecording != nil {
			rec = recs[0].CallRecording.URL
		}
		return rec != ""
	})
	assert.Equal(t, "https://app.myoperator.co/audio/rec-aaaaaaaaaaaa0001", rec)
	assert.Len(t, s.records(spec.uid), 1)
}

// An unmapped agent's call is kept unattributed, never written to a wrong owner.
func TestUnmappedAgentIsUnattributed(t *testing.T) {
	s := newStack(t, stackOpts{})
	spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{nobody}, answered: true}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
	tr := s.waitStatus(spec.uid, "unattributed", within)
	assert.Nil(t, tr["owner"])
	assert.Empty(t, s.records(spec.uid))
	// The log id alias finds the same trace.
	r := s.trace(afterCallLogID(t, s, spec.uid))
	assert.Equal(t, spec.uid, r.Body["call_id"])

	parked, err := s.app.State.Parked(t.Context(), tenantID)
	require.NoError(t, err)
	require.Len(t, parked, 1, "parked call kept for late binding")
	assert.Equal(t, spec.uid, parked[0].CallID)
}

// A tenant sending both webhooks: a call parked as its afterCall (the agent by user id)
// and then as its v2 summary (the agent by uuid) is written once the agent is mapped by
// its user id alone — the summary's uuid is not in the mapping.
func TestParkedCallOfBothWebhooksWrittenOnceMapped(t *testing.T) {
	s := newStack(t, stackOpts{})
	uid := newUID()
	v1 := afterCall(callSpec{uid: uid, status: 1, legs: []leg{{agents: []agent{nobody}, answered: true}}})
	require.Equal(t, http.StatusOK, s.postForm("aftercall", v1, token).Status)
	s.waitStatus(uid, "unattributed", within)
	r := s.postV2(v2Call("call.summary", uid, "bridged", v2Leg{a: nobody, answered: true}))
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	waitFor(t, "the writer parked the summary too", func() bool {
		return testutil.ToFloat64(s.app.Metrics.WriterOutcomes.WithLabelValues(tenantID, "log", "unattributed")) >= 2
	})

	s.ensureCRMUser("1009")
	m := s.admin(http.MethodPut, "/mappings/"+nobody.id, map[string]any{"crm_user_id": "1009"})
	require.Equal(t, http.StatusOK, m.Status, "%v", m.Body)
	rec := s.waitRecords(uid, 1, within)[0]
	assert.EqualValues(t, 1009, rec.Owner.ID, "the owner of the user id the afterCall named")
	s.waitStatus(uid, "written", within)
	assert.Len(t, s.records(uid), 1)
}

// With a fallback owner, unmapped agents' calls go to it.
func TestFallbackOwner(t *testing.T) {
	s := newStack(t, stackOpts{fallback: "4242"})
	spec := callSpec{uid: newUID(), status: 2, legs: []leg{{agents: []agent{nobody}}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
	recs := s.waitRecords(spec.uid, 1, within)
	assert.EqualValues(t, 4242, recs[0].Owner.ID)
}

// Bad input: 400 with a JSON error saying what is wrong, and the raw payload kept.
func TestMalformedPayloadRejectedAndKept(t *testing.T) {
	s := newStack(t, stackOpts{noWriter: true})
	cases := []struct{ name, body, want string }{
		{"invalid JSON", `{"_ai": x}`, "invalid JSON"},
		{"no call id", `{"_ev":1,"_su":1}`, "call id"},
		{"bad direction", `{"_ai":"5f114f490dbe2437","_ev":7,"_su":1}`, "_ev"},
		{"empty", ``, "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.postForm("aftercall", tc.body, token)
			require.Equal(t, http.StatusBadRequest, r.Status)
			e, ok := r.Body["error"].(map[string]any)
			require.True(t, ok, "error body: %v", r.Body)
			assert.Equal(t, "malformed_payload", e["code"])
			assert.Contains(t, e["message"], tc.want)
		})
	}
	kept := s.readTopic(s.env.Topics.Rejected, 1, func(m kafka.Message) bool { return strings.Contains(string(m.Value), "%22_ai%22%3A+x") })
	require.Len(t, kept, 1, "raw payload on the rejected topic")
	assert.Equal(t, "malformed_payload", kafkabus.Header(kept[0], kafkabus.HeaderReason))
	assert.Contains(t, kafkabus.Header(kept[0], kafkabus.HeaderError), "invalid JSON")
	assert.Equal(t, tenantID, string(kept[0].Key))

	// A malformed inCall too.
	r := s.postForm("incall", `{"id":"x"}`, token)
	assert.Equal(t, http.StatusBadRequest, r.Status)
}

func TestAuthAndLimits(t *testing.T) {
	s := newStack(t, stackOpts{noWriter: true})
	p := afterCall(callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}})

	r := s.postForm("aftercall", p, "wrong")
	assert.Equal(t, http.StatusUnauthorized, r.Status)
	assert.Equal(t, "unauthorized", r.Body["error"].(map[string]any)["code"])

	req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/webhooks/myoperator/nosuchtenant/aftercall?token="+token, strings.NewReader("myoperator="+p))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r2 := s.do(req)
	assert.Equal(t, http.StatusUnauthorized, r2.Status)
	assert.Equal(t, r.Body, r2.Body, "unknown tenant and wrong token answer alike")

	// Basic auth password works.
	req, _ = http.NewRequest(http.MethodPost, s.api.URL+"/webhooks/myoperator/"+tenantID+"/aftercall", strings.NewReader(p))
	req.SetBasicAuth("myoperator", token)
	req.Header.Set("Content-Type", "application/json")
	assert.Equal(t, http.StatusOK, s.do(req).Status)

	// Another company's payload is refused for a tenant pinned to its company.
	other := strings.Replace(afterCall(callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}}), companyID, "ffffffffffffffff", 1)
	r = s.postJSON("aftercall", other)
	assert.Equal(t, http.StatusForbidden, r.Status)
	assert.Equal(t, "wrong_company", r.Body["error"].(map[string]any)["code"])

	big := `{"_ai":"` + strings.Repeat("a", 1<<20) + `"}`
	r = s.postJSON("aftercall", big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Status)
	assert.Equal(t, "payload_too_large", r.Body["error"].(map[string]any)["code"])
	assert.Equal(t, 1.0, testutil.ToFloat64(s.app.Metrics.Webhooks.WithLabelValues(tenantID, "aftercall", "too_large")), "counted, as its dashboard series says")
	// Kept as every refused payload is: its head (the whole would not fit a Kafka message).
	kept := s.readTopic(s.env.Topics.Rejected, 1, func(m kafka.Message) bool {
		return kafkabus.Header(m, kafkabus.HeaderReason) == "payload_too_large"
	})
	require.Len(t, kept, 1, "the too-large payload's head on the rejected topic")
	assert.Equal(t, big[:ingest.KeptHead], string(kept[0].Value))
	assert.Contains(t, kafkabus.Header(kept[0], kafkabus.HeaderError), "first 65536 bytes")

	// Admin API needs its token.
	req, _ = http.NewRequest(http.MethodGet, s.api.URL+"/admin/v1/tenants/"+tenantID+"/mappings", nil)
	assert.Equal(t, http.StatusUnauthorized, s.do(req).Status)
}

// inCall publishes a live event naming the mapped owners of the rung agents.
func TestInCallPublishesLiveEvent(t *testing.T) {
	s := newStack(t, stackOpts{noWriter: true})
	s.mapAgent(sumit.id, "1001", sumit.email, "+91"+sumit.phone10)
	uid := newUID()
	r := s.postForm("incall", inCall(uid, 0, sumit, nobody), token)
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	assert.Equal(t, "duplicate", s.postForm("incall", inCall(uid, 0, sumit, nobody), token).Body["status"])
	msgs := s.readTopic(s.env.Topics.Live, 1, func(m kafka.Message) bool { return kafkabus.Header(m, kafkabus.HeaderCallID) == uid })
	require.Len(t, msgs, 1, "one live event despite the redelivery")
	assert.Contains(t, string(msgs[0].Value), `"crm_user_id":"1001"`)
	assert.Contains(t, string(msgs[0].Value), `"state":"ringing"`)
	assert.Equal(t, tenantID+":"+uid, string(msgs[0].Key))
}

// A CRM that rejects a call for good sends it to the DLQ with the reason; the trace says so.
func TestPermanentCRMFailureDeadLetters(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.mapAgent(sumit.id, "1001", sumit.email)
	require.NoError(t, s.kylas.SetFaults(sandboxFaults(1, 400)))
	spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
	s.waitStatus(spec.uid, "dead_lettered", within)
	dlq := s.readTopic(s.env.Topics.DLQ, 1, func(m kafka.Message) bool { return kafkabus.Header(m, kafkabus.HeaderCallID) == spec.uid })
	require.Len(t, dlq, 1)
	assert.Equal(t, "crm_rejected", kafkabus.Header(dlq[0], kafkabus.HeaderReason))
	assert.Equal(t, "400", kafkabus.Header(dlq[0], kafkabus.HeaderStatus))
	assert.Equal(t, s.env.Topics.Log, kafkabus.Header(dlq[0], kafkabus.HeaderOrigTopic))
	assert.Empty(t, s.records(spec.uid))
}

// Transient CRM failures go through the retry topic and the call is written once.
func TestTransientCRMFailureRetries(t *testing.T) {
	fast := route.Policy{InPlace: 1, InPlaceWait: 10 * time.Millisecond, MaxAttempts: 10, Base: 50 * time.Millisecond, Cap: 200 * time.Millisecond}
	s := newStack(t, stackOpts{retry: &fast})
	s.mapAgent(sumit.id, "1001", sumit.email)
	require.NoError(t, s.kylas.SetFaults(sandboxFaults(1, 503)))
	spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
	s.waitStatus(spec.uid, "retrying", within)
	require.NoError(t, s.kylas.SetFaults(sandboxFaults(0, 0)))
	recs := s.waitRecords(spec.uid, 1, within)
	assert.EqualValues(t, 1001, recs[0].Owner.ID)
	s.waitStatus(spec.uid, "written", within)
}

// A call from one of the tenant's own agents is internal: written for its owner, but
// related to no lead or contact (the number is no customer's).
func TestInternalCallIsNotRelatedToACustomer(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.mapAgent(sumit.id, "1001", sumit.email)
	s.mapAgent(priya.id, "1002", priya.email, "+919711636496") // the "caller" of afterCall payloads
	s.kylas.AddContact(sandbox.KylasPerson{FirstName: "Not", LastName: "A customer", PhoneNumbers: []sandbox.KylasPhone{{Value: "9711636496", DialCode: "+91"}}})
	spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}}
	require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(spec), token).Status)
	recs := s.waitRecords(spec.uid, 1, within)
	assert.EqualValues(t, 1001, recs[0].Owner.ID)
	assert.Empty(t, recs[0].RelatedTo, "an internal call has no customer to relate")
	require.NotEmpty(t, recs[0].Notes)
	assert.Contains(t, recs[0].Notes[0].Description, "internal")
}
