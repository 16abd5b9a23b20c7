package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/tenant"
)

func TestRecordingKeys(t *testing.T) {
	for _, tc := range []struct {
		name, one, many string
		want            []tenant.Secret
		err             string
	}{
		{"none", "", "", nil, ""},
		{"one key", "0123456789abcdef", "", []tenant.Secret{"0123456789abcdef"}, ""},
		{"rotation: the first signs", "", "new-key-0123456789, old-key-0123456789", []tenant.Secret{"new-key-0123456789", "old-key-0123456789"}, ""},
		{"both set", "0123456789abcdef", "new-key-0123456789", nil, "not both"},
		{"a short key", "", "new-key-0123456789,short", nil, "CALLTRACK_RECORDING_SIGNING_KEYS key 2 must be at least 16 characters"},
		{"short single", "short", "", nil, "CALLTRACK_RECORDING_SIGNING_KEY must be at least 16 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CALLTRACK_RECORDING_SIGNING_KEY", tc.one)
			t.Setenv("CALLTRACK_RECORDING_SIGNING_KEYS", tc.many)
			c, err := Load()
			require.NoError(t, err)
			verr := c.Validate(Need{})
			if tc.err != "" {
				require.Error(t, verr)
				assert.Contains(t, verr.Error(), tc.err)
				assert.NotContains(t, verr.Error(), "0123456789", "keys never print")
				return
			}
			require.NoError(t, verr)
			assert.Equal(t, tc.want, c.RecordingKeys())
		})
	}
}
