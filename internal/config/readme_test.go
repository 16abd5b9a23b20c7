package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README's table of settings ("Running in production") names every CALLTRACK_*
// variable Config reads, each in a row that also gives its default.
func TestReadmeListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	start := strings.Index(readme, "| variable | default | meaning |")
	require.GreaterOrEqual(t, start, 0, "README's table of settings")
	end := strings.Index(readme[start:], "\n\n")
	require.Positive(t, end)
	rows := strings.Split(readme[start:start+end], "\n")

	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := f.Tag.Get("env")
		if !strings.HasPrefix(name, "CALLTRACK_") {
			continue
		}
		var row string
		for _, r := range rows {
			// The variable column: "| `A`, `B` (...) | default | meaning |".
			if cells := strings.Split(r, "|"); len(cells) > 2 && strings.Contains(cells[1], "`"+name+"`") {
				row = r
				break
			}
		}
		if !assert.NotEmpty(t, row, "%s (Config.%s) is missing from README's table of settings", name, f.Name) {
			continue
		}
		if def, ok := f.Tag.Lookup("envDefault"); ok {
			assert.Contains(t, row, def, "README's row of %s gives another default than config.go's %q", name, def)
		}
	}
}
