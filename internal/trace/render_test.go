package trace

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRender(t *testing.T) {
	t0 := time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC)
	tr := &Trace{Tenant: "acme", CallID: "n2.1596270949.2175190", LogID: "5f114f490dbe2437", Status: StatusWritten, Agent: "5cd40f6556f2f124",
		Owner: &struct {
			CRMUserID string `json:"crm_user_id"`
		}{"1001"},
		CRM: &struct {
			RecordID string `json:"record_id"`
		}{"42"},
		Stages: []Stage{
			{Stage: StatusReceived, At: t0, Kind: "log"},
			{Stage: StatusPublished, At: t0.Add(12 * time.Millisecond), Kind: "log"},
			{Stage: StatusDeadLettered, At: t0.Add(1230 * time.Millisecond), Kind: "log", Detail: "crm_rejected: kylas: HTTP 400"},
			{Stage: "replayed", At: t0.Add(65 * time.Minute), Kind: "log", Detail: "from calltrack.call.dlq.v1/1@3 to calltrack.call.log.v1"},
			{Stage: StatusWritten, At: t0.Add(65*time.Minute + 150*time.Millisecond), Kind: "log", Detail: "record 42"},
			{Stage: "replayed", At: t0.Add(2 * time.Hour), Kind: "log", Detail: "from calltrack.call.log.v1/1@0 to calltrack.call.log.v1"},
		}}
	var b bytes.Buffer
	Render(&b, tr)
	assert.Equal(t, `call n2.1596270949.2175190 of tenant acme (afterCall log id 5f114f490dbe2437)
status   written
owner    CRM user 1001
record   CRM record 42
agent    MyOperator user 5cd40f6556f2f124
stages (UTC; + is the time since the stage before):
  2026-10-10 09:00:00.000  +0s       received       log
  2026-10-10 09:00:00.012  +12ms     published      log
  2026-10-10 09:00:01.230  +1.2s     dead_lettered  log  crm_rejected: kylas: HTTP 400
  2026-10-10 10:05:00.000  +1h5m     replayed       log  from calltrack.call.dlq.v1/1@3 to calltrack.call.log.v1
  2026-10-10 10:05:00.150  +150ms    written        log  record 42
  2026-10-10 11:00:00.000  +55m0s    replayed       log  from calltrack.call.log.v1/1@0 to calltrack.call.log.v1 (already written: skipped)
written 1h5m after the first stage
`, b.String())

	b.Reset()
	Render(&b, &Trace{Tenant: "acme", CallID: "c1", Status: StatusDeadLettered, Stages: []Stage{{Stage: StatusDeadLettered, At: t0}}})
	assert.Contains(t, b.String(), "owner    none\n")
	assert.Contains(t, b.String(), "next: fix the cause (last stage), then `calltrack replay --topic dlq --call-id c1 --tenant acme`\n")
}

func TestSince(t *testing.T) {
	t0 := time.Now()
	for d, want := range map[time.Duration]string{
		0: "0s", 12 * time.Millisecond: "12ms", 1234 * time.Millisecond: "1.2s", 184 * time.Second: "3m4s",
		2*time.Hour + 5*time.Minute + 10*time.Second: "2h5m",
	} {
		assert.Equal(t, want, Since(t0, t0.Add(d)))
	}
}
