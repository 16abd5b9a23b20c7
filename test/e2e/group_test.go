package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two writers share the consumer group; one stops mid-stream. Every call is still
// written, exactly once, with its owner.
func TestConsumerGroupWriterStopsMidStream(t *testing.T) {
	// A generous CRM rate limit: this test is about the group, not about pacing.
	s := newStack(t, stackOpts{noWriter: true, kylasLimit: 200})
	s.mapAgent(sumit.id, "1001", sumit.email)
	s.mapAgent(priya.id, "1002", priya.email)
	stopA, wroteA := s.startWriter()
	_, wroteB := s.startWriter()
	// Both must be members with partitions before the stream starts.
	testenvEventually(t, 60*time.Second, "two writers share the partitions", func() bool {
		res, err := s.app.Kafka.Raw().DescribeGroups(t.Context(), &kafka.DescribeGroupsRequest{GroupIDs: []string{s.group}})
		if err != nil || len(res.Groups) != 1 || res.Groups[0].GroupState != "Stable" || len(res.Groups[0].Members) != 2 {
			return false
		}
		for _, m := range res.Groups[0].Members {
			if len(m.MemberAssignments.Topics) == 0 {
				return false
			}
		}
		return true
	})

	const calls = 60
	uids := make([]string, calls)
	owners := map[string]int64{}
	post := func(i int) {
		a, owner := sumit, int64(1001)
		if i%2 == 1 {
			a, owner = priya, 1002
		}
		uids[i] = newUID()
		owners[uids[i]] = owner
		r := s.postForm("aftercall", afterCall(callSpec{uid: uids[i], status: 1, legs: []leg{{agents: []agent{a}, answered: true}}}), token)
		require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	}
	for i := 0; i < calls/2; i++ {
		post(i)
	}
	// Stop writer A once the group is busy writing.
	testenvEventually(t, 60*time.Second, "both writers writing before the stop", func() bool { return wroteA.Load() >= 1 && wroteB.Load() >= 1 })
	stopA()
	beforeStop := wroteA.Load()
	for i := calls / 2; i < calls; i++ {
		post(i)
	}
	deadline := 60 * time.Second
	testenvEventually(t, deadline, fmt.Sprintf("all %d calls written", calls), func() bool { return len(s.kylas.Records()) >= calls })
	byCall := map[string]int{}
	for _, r := range s.kylas.Records() {
		byCall[r.RemoteID]++
		assert.Equal(t, owners[r.RemoteID], r.Owner.ID, "owner of %s", r.RemoteID)
	}
	for _, uid := range uids {
		assert.Equal(t, 1, byCall[uid], "CRM records of call %s", uid)
	}
	assert.Len(t, s.kylas.Records(), calls, "no duplicates in the CRM")
	assert.Equal(t, beforeStop, wroteA.Load(), "the stopped writer wrote nothing after it stopped")
	assert.Greater(t, wroteB.Load(), int64(calls/2-int(beforeStop)), "the remaining writer took over A's partitions")
	t.Logf("writer A wrote %d, writer B wrote %d", wroteA.Load(), wroteB.Load())
}
