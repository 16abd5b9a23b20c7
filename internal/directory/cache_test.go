package directory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/directory"
)

type countingSource struct {
	calls int
	err   error
}

func (s *countingSource) Users(context.Context) ([]directory.User, error) {
	s.calls++
	return []directory.User{{ID: "1001"}}, s.err
}

func TestCache(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		cache *directory.Cache
		err   error
		then  func(c *directory.Cache)
		calls int // listings after two Users calls with then in between
	}{
		{"kept within the TTL", &directory.Cache{TTL: time.Hour}, nil, nil, 1},
		{"listed again once forgotten", &directory.Cache{TTL: time.Hour}, nil, func(c *directory.Cache) { c.Forget("acme") }, 2},
		{"listed again after the TTL", &directory.Cache{TTL: time.Nanosecond}, nil, func(*directory.Cache) { time.Sleep(time.Millisecond) }, 2},
		{"a failed listing is not kept", &directory.Cache{TTL: time.Hour}, errors.New("down"), nil, 2},
		{"a nil cache keeps nothing", nil, nil, func(c *directory.Cache) { c.Forget("acme") }, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &countingSource{err: tc.err}
			_, err := tc.cache.Users(t.Context(), "acme", src)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			}
			if tc.then != nil {
				tc.then(tc.cache)
			}
			users, err := tc.cache.Users(t.Context(), "acme", src)
			if tc.err == nil {
				require.NoError(t, err)
				assert.Equal(t, "1001", users[0].ID)
			}
			assert.Equal(t, tc.calls, src.calls)
		})
	}
}
