package schemas_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/calltrack/calltrack/schemas"
)

// checkV2Golden validates the calltrack event inside a Webhook v2 parser golden file
// (a myoperator.V2Event: live, log or amendment, by kind; none for unknown types).
func checkV2Golden(t *testing.T, file string, b []byte) {
	t.Helper()
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", filepath.Base(file), err)
	}
	for field, topic := range map[string]string{"live": tLive, "log": tLog, "amendment": tRecording} {
		v, ok := ev[field]
		if !ok {
			continue
		}
		if err := schemas.Validate(topic, v); err != nil {
			t.Errorf("%s: %s: %v", filepath.Base(file), field, err)
		}
		validStrict(t, topic, v)
	}
}
