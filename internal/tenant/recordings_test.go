package tenant_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordingsSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml string
		want time.Duration
		err  string
	}{
		{"", 0, ""},
		{"    recordings: {link_ttl: never}\n", 0, ""},
		{"    recordings: {link_ttl: 720h}\n", 720 * time.Hour, ""},
		{"    recordings: {link_ttl: 30m}\n", 0, "at least 1h"},
		{"    recordings: {link_ttl: a month}\n", 0, `recordings.link_ttl "a month"`},
	} {
		reg, err := loadAcme(t, tc.yaml)
		if tc.err != "" {
			require.Error(t, err, tc.yaml)
			assert.Contains(t, err.Error(), tc.err)
			continue
		}
		require.NoError(t, err, tc.yaml)
		acme, _ := reg.Get("acme")
		assert.Equal(t, tc.want, acme.Recordings.LinkTTL, tc.yaml)
	}
}
