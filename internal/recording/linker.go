package recording

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/tenant"
)

// Linker makes the recording links the writer puts in CRM records (the writer's
// RecordingLinker): calltrack's short link when links can be signed and the recording
// has a file name, else MyOperator's URL as it came.
type Linker struct {
	Signer  Signer
	Tenants *tenant.Registry
	Store   *Store
	Log     zerolog.Logger
	Now     func() time.Time
}

// Link returns the link of a call's recording, keeping its file name for the clicks.
func (l *Linker) Link(tenantID, callID string, rec call.Recording) string {
	if rec.FileName == "" || !l.Signer.Enabled() {
		return rec.URL
	}
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	var expires time.Time
	keep := FileTTL
	if t, ok := l.Tenants.Get(tenantID); ok && t.Recordings.LinkTTL > 0 {
		expires = now.Add(t.Recordings.LinkTTL)
		keep = t.Recordings.LinkTTL + 24*time.Hour
	}
	if l.Store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := l.Store.PutFile(ctx, tenantID, callID, rec.FileName, keep); err != nil {
			// The link works all the same: a click finds the file in MyOperator's call log.
			l.Log.Warn().Err(err).Str("tenant", tenantID).Str("call_id", callID).Msg("recording file name not kept")
		}
	}
	return l.Signer.URL(tenantID, callID, expires)
}
