package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestWords(t *testing.T) {
	for d, want := range map[time.Duration]string{6 * time.Hour: "6h", 15 * time.Minute: "15m", 90 * time.Minute: "1h30m",
		150 * time.Second: "2m30s", 45 * time.Second: "45s", 2*time.Hour + 30*time.Second: "2h0m30s"} {
		assert.Equal(t, want, spanWords(d), "%v", d)
	}
	assert.Equal(t, "1 message", plural(1, "message"))
	assert.Equal(t, "0 messages", plural(0, "message"))
	assert.Equal(t, "2 CRM users", plural(2, "CRM user"))
	assert.Equal(t, "agent=a+b&crm_user=1001", string(mapQuery("a b", "", "1001", "")))
	assert.Equal(t, "agent=5cd4&uuid=9e1b-7d", string(mapQuery("5cd4", "9e1b-7d", "", "")))
}
