package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// commandStats reads redis-server's own count of calls per command (INFO
// commandstats): the difference over a run, less the INFO calls themselves, is what
// the server under test asked of Redis.
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("redis INFO commandstats: %w", err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		// cmdstat_get:calls=12,usec=34,usec_per_call=2.83,rejected_calls=0,failed_calls=0
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	return out, nil
}

// commandDelta is after − before, without the INFO command (the measurement's own).
func commandDelta(before, after map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for k, v := range after {
		if k == "info" {
			continue
		}
		if n := v - before[k]; n > 0 {
			d[k] = n
		}
	}
	return d
}

// perRequest renders a command delta per accepted request: "12.0 (hset 4.0, get 3.0, ...)".
func perRequest(d map[string]int64, requests int) string {
	if requests == 0 {
		return "n/a"
	}
	var total int64
	for _, v := range d {
		total += v
	}
	keys := slices.Collect(maps.Keys(d))
	slices.SortFunc(keys, func(a, b string) int {
		if d[a] != d[b] {
			return int(d[b] - d[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, float64(d[k])/float64(requests)))
	}
	return fmt.Sprintf("%.1f (%s)", float64(total)/float64(requests), strings.Join(parts, ", "))
}
