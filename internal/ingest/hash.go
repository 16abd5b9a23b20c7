package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/calltrack/calltrack/internal/myoperator"
)

// canonBuf holds the canonical JSON while it is hashed: nothing else keeps it.
var canonBuf = sync.Pool{New: func() any { return new([]byte) }}

// payloadHash identifies a payload whatever its encoding: the hash of its JSON with
// sorted keys and no whitespace (myoperator.Canonical).
func payloadHash(raw myoperator.Object) string {
	buf := canonBuf.Get().(*[]byte)
	*buf = raw.AppendCanonical((*buf)[:0])
	sum := sha256.Sum256(*buf)
	if cap(*buf) <= 64<<10 { // an odd, huge payload's buffer is not kept
		canonBuf.Put(buf)
	}
	return hex.EncodeToString(sum[:16])
}
