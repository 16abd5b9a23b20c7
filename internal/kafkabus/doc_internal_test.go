package kafkabus

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docs/architecture.md's table of topics is the operators' list: every topic of the
// code's table, with its kind and retention, and no other.
func TestArchitectureListsEveryTopic(t *testing.T) {
	b, err := os.ReadFile("../../docs/architecture.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `([a-z]+)` \\| `(calltrack\\.[a-z.0-9]+)` \\| ([^|]+) \\|")
	documented := map[string][2]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		documented[m[2]] = [2]string{m[1], m[3]}
	}
	require.NotEmpty(t, documented, "the table of topics in docs/architecture.md")
	for _, e := range topicTable {
		d, ok := documented[e.name]
		if !assert.True(t, ok, "%s is missing from docs/architecture.md", e.name) {
			continue
		}
		assert.Equal(t, e.kind, d[0], "%s's kind", e.name)
		want := "compacted"
		if ms, ok := e.configs["retention.ms"]; ok {
			want = map[string]string{"86400000": "1 day", "1209600000": "14 days", "2592000000": "30 days"}[ms]
		}
		assert.Equal(t, want, strings.TrimSpace(d[1]), "%s's retention", e.name)
		delete(documented, e.name)
	}
	assert.Empty(t, documented, "topics docs/architecture.md lists that the code does not have")
}
