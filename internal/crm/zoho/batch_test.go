package zoho_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
)

// A caller that stops waiting after its batch was sent still gets the batch's
// outcome: its record's id, not a failure that would invite a second create.
func TestBatchSentIsAwaitedToItsEnd(t *testing.T) {
	t.Parallel()
	const n = 5
	// The batch goes when full (n records), never on the linger.
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) { c.MaxBatch, c.Linger = n, time.Hour })
	// A first batch caches the number's (empty) searches, so that the latency below
	// holds up only the insert.
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := a.CreateCall(t.Context(), crmtest.NewCall(fmt.Sprintf("warm-%d", i), "+919711636496", owner, call.Incoming, call.Answered))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.NoError(t, sb.SetFaults(sandbox.Faults{LatencyMS: 500}))
	ids, errs := make([]string, n), make([]error, n)
	giveUp, cancel := context.WithCancel(t.Context())
	for i := range n {
		wg.Go(func() {
			ctx := t.Context()
			if i%2 == 0 { // these stop waiting while the insert is in flight
				ctx = giveUp
			}
			ids[i], errs[i] = a.CreateCall(ctx, crmtest.NewCall(fmt.Sprintf("aw-%d", i), "+919711636496", owner, call.Incoming, call.Answered))
		})
	}
	require.Eventually(t, func() bool { return sb.Stats().ByEndpoint["POST /crm/v8/Calls"] == 2 },
		10*time.Second, 5*time.Millisecond, "the second insert reached the CRM")
	cancel()
	wg.Wait()
	recs := sb.Records()[n:]
	require.Len(t, recs, n)
	byID := map[string]string{}
	for _, r := range recs {
		byID[r.ID] = r.Subject
	}
	for i := range n {
		require.NoError(t, errs[i], "caller %d", i)
		assert.Contains(t, byID[ids[i]], fmt.Sprintf("[aw-%d]", i), "caller %d got its own record", i)
	}
}

// A caller that gives up before its batch is sent is left out: a clean failure.
func TestBatchNotSentIsACleanFailure(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := a.CreateCall(ctx, crmtest.NewCall("gone", "+919711636496", owner, call.Incoming, call.Answered))
		done <- err
	}()
	cancel()
	err := <-done
	require.Error(t, err)
	assert.False(t, crm.OutcomeUnknown(err) && len(sb.Records()) == 0, "nothing was sent, so the outcome is known: %v", err)
}

// An insert whose answer is lost leaves every record of the batch unknown.
func TestBatchLostAnswerIsUnknown(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, nil)
	require.NoError(t, sb.SetFaults(sandbox.Faults{LostResponseRate: 1}))
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = a.CreateCall(t.Context(), crmtest.NewCall(fmt.Sprintf("lost-%d", i), "+919711636496", owner, call.Incoming, call.Answered))
		})
	}
	wg.Wait()
	assert.Len(t, sb.Records(), 3)
	for i, err := range errs {
		assert.ErrorIs(t, err, crm.ErrOutcomeUnknown, "caller %d", i)
	}
}

// The request budget when calls come one at a time (issue 12: Zoho ≤ 0.2 requests a
// call at steady state): inserts posted at 5 a second, each on its own (nobody waits
// for another), share requests — the linger stretches towards MaxLinger while they
// keep coming — and none waits longer than MaxLinger plus the request.
func TestAdaptiveLingerAtAModestRate(t *testing.T) {
	t.Parallel()
	const (
		n    = 40
		rate = 5 // inserts a second
	)
	sb, a, _ := setup(t, sandbox.ZohoOptions{Users: ownerUser}, func(c *zoho.Config) {
		c.Linger, c.MaxLinger = zoho.DefaultLinger, zoho.DefaultMaxLinger
	})
	// Warm-up: the caller's lookup is cached, the token and field metadata fetched.
	_, err := a.CreateCall(t.Context(), crmtest.NewCall("warm", customer, owner, call.Incoming, call.Answered))
	require.NoError(t, err)
	before := sb.Stats()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		longest time.Duration
	)
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		wg.Go(func() {
			start := time.Now()
			_, err := a.CreateCall(t.Context(), crmtest.NewCall(fmt.Sprintf("rate-%d", i), customer, owner, call.Incoming, call.Answered))
			assert.NoError(t, err)
			mu.Lock()
			longest = max(longest, time.Since(start))
			mu.Unlock()
		})
	}
	wg.Wait()
	after := sb.Stats()
	perCall := float64(after.Requests-before.Requests) / n
	t.Logf("%d inserts at %d/s: %d requests (%.3f a call), %d of them inserts; longest wait %v", n, rate, after.Requests-before.Requests,
		perCall, after.ByEndpoint["POST /crm/v8/Calls"]-before.ByEndpoint["POST /crm/v8/Calls"], longest)
	assert.LessOrEqual(t, perCall, 0.2, "Zoho requests per call")
	assert.Len(t, sb.Records(), n+1)
	assert.Less(t, longest, zoho.DefaultMaxLinger+time.Second, "no insert waits much beyond MaxLinger")
}

// An isolated insert, and a caller that creates one call after another (waiting for
// each), wait the short linger only: their gaps say nothing of other traffic.
func TestAdaptiveLingerKeepsALoneCallerFast(t *testing.T) {
	t.Parallel()
	_, a, _ := setup(t, sandbox.ZohoOptions{Users: ownerUser}, func(c *zoho.Config) {
		c.Linger, c.MaxLinger = 100*time.Millisecond, zoho.DefaultMaxLinger
	})
	_, err := a.CreateCall(t.Context(), crmtest.NewCall("lone-warm", customer, owner, call.Incoming, call.Answered))
	require.NoError(t, err)
	for i := range 8 {
		start := time.Now()
		_, err := a.CreateCall(t.Context(), crmtest.NewCall(fmt.Sprintf("lone-%d", i), customer, owner, call.Incoming, call.Answered))
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 600*time.Millisecond, "insert %d waited for batch-mates that never come", i)
	}
	// After a pause, an isolated insert too.
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	_, err = a.CreateCall(t.Context(), crmtest.NewCall("lone-after", customer, owner, call.Incoming, call.Answered))
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 600*time.Millisecond)
}

// ownerUser is the sandbox's user that owner names.
var ownerUser = []sandbox.ZohoUser{{ID: owner, FullName: "Asha", Email: "asha@example.com"}}
