package ingest

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/calltrack/calltrack/internal/myoperator"
)

// payloadHash identifies a payload whatever its encoding: the hash of its JSON with
// sorted keys and no whitespace (myoperator.Canonical).
func payloadHash(raw []byte) string {
	sum := sha256.Sum256(myoperator.Canonical(raw))
	return hex.EncodeToString(sum[:16])
}
