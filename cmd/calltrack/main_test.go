package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Exit status 2 is a usage error (docs/runbook.md): wrong arguments too, not only bad
// flags; a command's own failure is not one.
func TestWrongArgumentsAreUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args  []string
		usage bool
	}{
		{[]string{"trace", "onlyone"}, true},
		{[]string{"version", "extra"}, true},
		{[]string{"version", "--no-such-flag"}, true},
		{[]string{"spool", "status", "a", "b"}, true},
		{[]string{"version"}, false},
	} {
		_, err := cli(t, c.args...)
		var ue usageError
		assert.Equal(t, c.usage, errors.As(err, &ue), "%v: %v", c.args, err)
	}
}
