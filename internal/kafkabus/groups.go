package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrGroupActive means a consumer group has members: its committed offsets cannot be
// moved under them (they would commit over the reset, or the broker refuses it).
var ErrGroupActive = errors.New("kafka: consumer group has active members")

// GroupMember is one consumer of a group.
type GroupMember struct {
	ID, ClientID, Host string
	Assigned           map[string][]int // topic → partitions
}

// Group is a consumer group's state as the coordinator sees it.
type Group struct {
	ID      string
	State   string // Empty, Stable, PreparingRebalance, CompletingRebalance, Dead
	Members []GroupMember
}

// DescribeGroup returns the group's state and members. A group the cluster does not
// know is reported as Dead with no members.
func (c *Client) DescribeGroup(ctx context.Context, group string) (Group, error) {
	res, err := whileCoordinatorMoves(ctx, func() (*kafka.DescribeGroupsResponse, error) {
		res, err := c.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err == nil && len(res.Groups) == 1 && isCoordinatorMoving(res.Groups[0].Error) {
			err = res.Groups[0].Error
		}
		return res, err
	})
	if err != nil {
		return Group{}, fmt.Errorf("kafka: describe group %s: %w", group, err)
	}
	for _, g := range res.Groups {
		if g.GroupID != group && g.GroupID != "" {
			continue
		}
		if errors.Is(g.Error, kafka.GroupIdNotFound) {
			return Group{ID: group, State: "Dead"}, nil
		}
		if g.Error != nil {
			return Group{}, fmt.Errorf("kafka: describe group %s: %w", group, g.Error)
		}
		out := Group{ID: group, State: g.GroupState}
		for _, m := range g.Members {
			gm := GroupMember{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: map[string][]int{}}
			for _, t := range m.MemberAssignments.Topics {
				gm.Assigned[t.Topic] = append(gm.Assigned[t.Topic], t.Partitions...)
			}
			out.Members = append(out.Members, gm)
		}
		return out, nil
	}
	return Group{ID: group, State: "Dead"}, nil
}

// Committed returns the group's committed offset of each partition of topic; -1 where
// the group has committed nothing.
func (c *Client) Committed(ctx context.Context, group, topic string, parts []int) (map[int]int64, error) {
	res, err := whileCoordinatorMoves(ctx, func() (*kafka.OffsetFetchResponse, error) {
		res, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
		if err == nil && isCoordinatorMoving(res.Error) {
			err = res.Error
		}
		return res, err
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: committed offsets of %s on %s: %w", group, topic, err)
	}
	if res.Error != nil && !errors.Is(res.Error, kafka.GroupIdNotFound) {
		return nil, fmt.Errorf("kafka: committed offsets of %s on %s: %w", group, topic, res.Error)
	}
	out := make(map[int]int64, len(parts))
	for _, p := range parts {
		out[p] = -1
	}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("kafka: committed offset of %s on %s[%d]: %w", group, topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// PartitionReset is one partition's move.
type PartitionReset struct {
	Partition int
	From      int64 // committed before; -1: nothing committed
	To        int64
}

// GroupReset says what ResetGroup did (or, dry, would do).
type GroupReset struct {
	Group, Topic string
	Partitions   []PartitionReset
}

// Moved counts the partitions whose offset changes.
func (r GroupReset) Moved() int {
	n := 0
	for _, p := range r.Partitions {
		if p.From != p.To {
			n++
		}
	}
	return n
}

// ResetGroup moves a stopped group's committed offsets on topic to the first record at
// or after t on each partition (the end where nothing is that recent; the log start when t
// is zero), so the group's next member starts reading there. kafka-go cannot seek a group
// reader; this is the supported way. It refuses with ErrGroupActive while the group has
// members. With dryRun nothing is committed.
func (c *Client) ResetGroup(ctx context.Context, group, topic string, t time.Time, dryRun bool) (GroupReset, error) {
	out := GroupReset{Group: group, Topic: topic}
	g, err := c.DescribeGroup(ctx, group)
	if err != nil {
		return out, err
	}
	if len(g.Members) > 0 {
		return out, fmt.Errorf("%w: %s is %s with %d member(s) (%s); stop its consumers first",
			ErrGroupActive, group, g.State, len(g.Members), memberList(g.Members))
	}
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return out, err
	}
	var to map[int]int64
	if t.IsZero() {
		to, err = c.FirstOffsets(ctx, topic, parts)
	} else {
		to, err = c.OffsetsAt(ctx, topic, parts, t)
	}
	if err != nil {
		return out, err
	}
	from, err := c.Committed(ctx, group, topic, parts)
	if err != nil {
		return out, err
	}
	commits := make([]kafka.OffsetCommit, 0, len(parts))
	for _, p := range parts {
		out.Partitions = append(out.Partitions, PartitionReset{Partition: p, From: from[p], To: to[p]})
		commits = append(commits, kafka.OffsetCommit{Partition: p, Offset: to[p], Metadata: "calltrack groups reset"})
	}
	sort.Slice(out.Partitions, func(i, j int) bool { return out.Partitions[i].Partition < out.Partitions[j].Partition })
	if dryRun {
		return out, nil
	}
	// A commit from outside the group: generation -1 and no member id, which a broker
	// accepts only while the group is empty; a consumer that joined since is refused.
	res, err := whileCoordinatorMoves(ctx, func() (*kafka.OffsetCommitResponse, error) {
		res, err := c.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1,
			Topics: map[string][]kafka.OffsetCommit{topic: commits}})
		if err == nil {
			for _, p := range res.Topics[topic] {
				if isCoordinatorMoving(p.Error) {
					return res, p.Error
				}
			}
		}
		return res, err
	})
	if err != nil {
		return out, fmt.Errorf("kafka: reset %s on %s: %w", group, topic, err)
	}
	for _, p := range res.Topics[topic] {
		switch {
		case p.Error == nil:
		case errors.Is(p.Error, kafka.UnknownMemberId), errors.Is(p.Error, kafka.IllegalGeneration),
			errors.Is(p.Error, kafka.RebalanceInProgress):
			return out, fmt.Errorf("%w: %s: a consumer joined during the reset (%v)", ErrGroupActive, group, p.Error)
		default:
			return out, fmt.Errorf("kafka: reset %s on %s[%d]: %w", group, topic, p.Partition, p.Error)
		}
	}
	return out, nil
}

func memberList(ms []GroupMember) string {
	s := ""
	for i, m := range ms {
		if i > 0 {
			s += ", "
		}
		if i == 3 {
			return s + fmt.Sprintf("and %d more", len(ms)-3)
		}
		s += m.ClientID + "@" + m.Host
	}
	return s
}

// coordinatorWait bounds the retries of a group request while the group's coordinator
// is not ready: a young broker, or one under load, answers "not coordinator" or
// "coordinator loading" for seconds (5 s of retries was seen to fall short on a loaded
// 2-core CI box).
const coordinatorWait = 30 * time.Second

// whileCoordinatorMoves runs fn until it answers with anything but a moving
// coordinator, for at most coordinatorWait (or until ctx ends).
func whileCoordinatorMoves[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	deadline := time.Now().Add(coordinatorWait)
	for {
		v, err := fn()
		if !isCoordinatorMoving(err) || time.Now().After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func isCoordinatorMoving(err error) bool {
	return errors.Is(err, kafka.NotCoordinatorForGroup) || errors.Is(err, kafka.GroupCoordinatorNotAvailable) ||
		errors.Is(err, kafka.GroupLoadInProgress)
}
