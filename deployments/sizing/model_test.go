package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSize(t *testing.T) {
	small := Size(Scenario{CallsPerMin: 10, Tenants: 10})
	assert.Equal(t, 2, small.Serve, "two for availability")
	assert.Equal(t, 2, small.Work)
	assert.True(t, small.KylasOK)

	big := Size(Scenario{CallsPerMin: 100000, Tenants: 10})
	assert.False(t, big.KylasOK, "10,000 calls a minute on one Kylas key is past its 5 requests/s")
	assert.False(t, big.ZohoRateOK)
	spread := Size(Scenario{CallsPerMin: 100000, Tenants: 10000})
	assert.True(t, spread.KylasOK, "10 calls a minute per tenant fit")
	for _, p := range []Plan{small, big, spread} {
		assert.LessOrEqual(t, p.Work, p.Partitions, "work replicas never exceed partitions")
	}
	assert.Equal(t, big.Work, spread.Work, "work replicas follow the call rate, not the tenant count")
	assert.Greater(t, big.RedisGiB, 1000*small.RedisGiB*0.99)
}
