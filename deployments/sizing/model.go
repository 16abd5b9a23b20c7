package main

import (
	"fmt"
	"math"
)

// Measured per-unit figures (docs/scaling.md says how and on what). Change them when a
// new measurement replaces one, and rerun: go run ./deployments/sizing
const (
	serveWebhooksPerCore = 500.0 // webhooks/s one core of serve answers (≈2 ms CPU each)
	serveCoresPerReplica = 0.5   // planned CPU of a serve replica (HPA target 60 % of 1 core)
	workCallsPerReplica  = 100.0 // calls/s one work replica writes when the CRM keeps up
	webhooksPerCall      = 4.0   // inCall ringing + answered, afterCall, v2 events/redeliveries

	// Redis, MEMORY USAGE on redis-server 7 after real serve + work runs, and their TTLs.
	redisWrittenBytes  = 1368.0 // the call log as written (late recording/disposition), 30 days
	redisIdemBytes     = 120.0  // exactly-once key crm:<tenant>:<call>:log, 30 days
	redisTraceBytes    = 590.0  // trace hash + stages list + alias, 7 days
	redisWebhookBytes  = 136.0  // webhook dedupe key, 2 days
	redisMappingBytes  = 712.0  // one agent mapping with its email/phone/uuid indexes
	redisOverhead      = 1.3    // expires index, allocator fragmentation
	agentsPerTenant    = 50.0   // mappings per tenant (an assumption: a mid-size call centre)
	kafkaLogRecord     = 1500.0 // bytes on disk per call-log record (uncompressed batches)
	kafkaRecordingRec  = 530.0  // per recording event
	kafkaLiveBytes     = 1600.0 // live events of a call (two inCalls), kept 1 day
	kafkaRetentionDays = 14.0   // log, recording, retry topics
	kafkaReplication   = 3.0

	kylasRPS       = 5.0  // requests/s per Kylas API key (docs: 5/s; 10/s for marketplace apps)
	zohoRPS        = 10.0 // calltrack's default pacing per Zoho credential
	kylasReqPerCal = 1.0  // a repeat caller: the create, the lookup from the shared cache (TestKylasRequestBudget)
	zohoCreditCall = 1.5  // a search (cache misses) + 1/100 of a batched insert, at best
)

// Scenario is a load: calls a minute across tenants.
type Scenario struct{ CallsPerMin, Tenants float64 }

// Plan is what a scenario needs.
type Plan struct {
	Scenario
	Serve, Work, Partitions            int
	RedisGiB, KafkaGiB                 float64
	PerTenantPerMin                    float64
	KylasOK, ZohoRateOK                bool
	ZohoCreditsPerDay, ZohoMaxUsersStd float64
}

// Size plans a scenario from the measured figures.
func Size(s Scenario) Plan {
	p := Plan{Scenario: s, PerTenantPerMin: s.CallsPerMin / s.Tenants}
	callsPerSec := s.CallsPerMin / 60
	webhooks := callsPerSec * webhooksPerCall
	p.Serve = max(2, int(math.Ceil(webhooks/(serveWebhooksPerCore*serveCoresPerReplica)*1.5))) // 50 % headroom, 2 for HA
	p.Work = max(2, int(math.Ceil(callsPerSec/workCallsPerReplica*1.5)))
	p.Partitions = max(6, nextPow2(p.Work*2)) // room to double work without repartitioning
	perCall := redisWrittenBytes*30*1440 + redisIdemBytes*30*1440 + redisTraceBytes*7*1440 + redisWebhookBytes*2*1440
	p.RedisGiB = (s.CallsPerMin*perCall + s.Tenants*agentsPerTenant*redisMappingBytes) * redisOverhead / (1 << 30)
	kafka := s.CallsPerMin * 1440 * (kafkaRetentionDays*(kafkaLogRecord+kafkaRecordingRec) + kafkaLiveBytes) * kafkaReplication
	p.KafkaGiB = kafka / (1 << 30)
	perTenantPerSec := p.PerTenantPerMin / 60
	p.KylasOK = perTenantPerSec*kylasReqPerCal <= kylasRPS*0.9
	p.ZohoRateOK = perTenantPerSec*zohoCreditCall <= zohoRPS*0.9
	p.ZohoCreditsPerDay = p.PerTenantPerMin * 1440 * zohoCreditCall
	return p
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

func (p Plan) String() string {
	ok := func(b bool) string {
		if b {
			return "ok"
		}
		return "OVER"
	}
	return fmt.Sprintf("| %s | %s | %s/min | %d | %d | %d | %.1f | %.0f | %s | %s | %s |",
		num(p.CallsPerMin), num(p.Tenants), num(p.PerTenantPerMin), p.Serve, p.Work, p.Partitions, p.RedisGiB, p.KafkaGiB,
		ok(p.KylasOK), ok(p.ZohoRateOK), num(p.ZohoCreditsPerDay))
}

func num(f float64) string {
	switch {
	case f >= 1000 && f == math.Trunc(f):
		return fmt.Sprintf("%s,%03d", num(math.Floor(f/1000)), int(f)%1000)
	case f >= 10 || f == math.Trunc(f):
		return fmt.Sprintf("%.0f", f)
	case f >= 0.1:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.3f", f)
}
