package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedisAddressNeverPrintsItsPassword(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:hunter2@redis.internal:6379/0":    "redis://:xxxxx@redis.internal:6379/0",
		"rediss://user:hunter2@redis.internal:6380": "rediss://user:xxxxx@redis.internal:6380",
		"redis-1:6379,redis-2:6379":                 "redis-1:6379,redis-2:6379",
	} {
		assert.Equal(t, want, Config{RedisAddr: in}.RedisAddrSafe())
	}
	// A URL the parser refuses: its error quotes the URL, password and all.
	_, err := NewRedis("redis://:hunter2@redis.internal:notaport", "")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestGCHeapBudget(t *testing.T) {
	c, err := Load()
	require.NoError(t, err)
	assert.Equal(t, int64(16<<20), c.GCHeapBudget, "the default")
	t.Setenv("CALLTRACK_GC_HEAP_BUDGET", "-1")
	c, err = Load()
	require.NoError(t, err)
	assert.ErrorContains(t, c.Validate(Need{}), "CALLTRACK_GC_HEAP_BUDGET must be a number of bytes")
	t.Setenv("CALLTRACK_GC_HEAP_BUDGET", "0")
	c, err = Load()
	require.NoError(t, err)
	assert.NoError(t, c.Validate(Need{}), "0 turns the pacing off")
}

func TestTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    []string
		problem string
	}{
		{"", nil, ""},
		{"10.244.0.0/16", []string{"10.244.0.0/16"}, ""},
		{"10.244.0.0/16, 192.0.2.10 ,fd00::/8", []string{"10.244.0.0/16", "192.0.2.10/32", "fd00::/8"}, ""},
		{"10.244.1.7/16", []string{"10.244.0.0/16"}, ""},
		{"10.244.0.0/16,ingress-nginx", nil, `CALLTRACK_TRUSTED_PROXIES: "ingress-nginx" is neither a CIDR`},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("CALLTRACK_TRUSTED_PROXIES", tc.env)
			c, err := Load()
			require.NoError(t, err)
			ranges, err := c.TrustedProxyRanges()
			if tc.problem != "" {
				assert.ErrorContains(t, err, tc.problem)
				assert.ErrorContains(t, c.Validate(Need{}), tc.problem, "Validate names it")
				return
			}
			require.NoError(t, err)
			var got []string
			for _, r := range ranges {
				got = append(got, r.String())
			}
			assert.Equal(t, tc.want, got)
			assert.NoError(t, c.Validate(Need{}))
		})
	}
}
