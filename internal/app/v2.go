package app

import (
	"context"
	"embed"
	"net/http"
	"path"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/ingest"
	"github.com/calltrack/calltrack/internal/recording"
	"github.com/calltrack/calltrack/internal/tenant"
)

// DevRecordingSigningKey signs the recording links `calltrack dev` writes (fixed, so
// links survive a restart of the demo; production sets CALLTRACK_RECORDING_SIGNING_KEYS).
const DevRecordingSigningKey = "calltrack-dev-recording-signing-key"

// mountV2 mounts MyOperator Webhook v2 and the durable recording links.
func (a *App) mountV2(e *echo.Echo) {
	(&ingest.V2{Handler: a.Ingest()}).Register(e)
	a.recordings.Register(e)
}

// RunProvisional logs whether durable recording links are on and releases held
// call.end events (provisional.go) until ctx ends.
func (a *App) RunProvisional(ctx context.Context) error {
	if !a.Signer().Enabled() {
		a.Log.Info().Msg("durable recording links are off (set CALLTRACK_PUBLIC_URL and CALLTRACK_RECORDING_SIGNING_KEYS): CRM records get MyOperator's expiring recording URL")
	} else {
		a.warnLongZohoLinks()
	}
	return a.runHeld(ctx)
}

// zohoRecordingField is the length of Zoho's Voice_Recording__s a link must fit
// (a tenant's layout may say more; the adapter reads it and keeps a longer link in
// the description only).
const zohoRecordingField = 100

// warnLongZohoLinks warns of Zoho tenants whose recording links, with a typical
// MyOperator call id, would not fit Voice_Recording__s: the base URL or tenant id is
// too long, so the link goes in the description only.
func (a *App) warnLongZohoLinks() {
	s := a.Signer()
	for _, id := range a.Tenants.IDs() {
		t, _ := a.Tenants.Get(id)
		if t.CRM.Kind != call.CRMZoho {
			continue
		}
		if n := s.LinkLen(t.ID, recording.TypicalCallIDLen, t.Recordings.LinkTTL > 0); n > zohoRecordingField {
			a.Log.Warn().Str("tenant", t.ID).Int("link_length", n).Int("field_length", zohoRecordingField).
				Msg("recording links will not fit Zoho's Voice_Recording__s (shorten CALLTRACK_PUBLIC_URL or the tenant id): they go in the call's description only")
		}
	}
}

// Signer makes and checks durable recording links. It reads the config when called,
// so a base URL known only once the server listens (tests) still applies.
func (a *App) Signer() recording.Signer {
	return recording.Signer{BaseURL: a.Cfg.PublicURL, Keys: a.Cfg.RecordingKeys()}
}

// recordingLink is the writer's RecordingLinker: calltrack's short, signed link when
// CALLTRACK_PUBLIC_URL and CALLTRACK_RECORDING_SIGNING_KEYS are set and the recording
// has a file name (which it keeps in Redis for the clicks); else MyOperator's URL.
func (a *App) recordingLink(tenantID, callID string, rec call.Recording) string {
	l := recording.Linker{Signer: a.Signer(), Tenants: a.Tenants, Store: a.recordings.Store, Log: a.Log}
	return l.Link(tenantID, callID, rec)
}

// wireRecordings builds the recording links' handler: MyOperator's fresh links cached
// in Redis and asked for through the account's shared limiter.
func (a *App) wireRecordings() {
	a.recordings = &recording.Handler{Signer: a.Signer(), Tenants: a.Tenants, Store: recording.NewStore(a.Redis, a.Cfg.RedisPrefix),
		MyOperator:        func(t *tenant.Tenant) recording.Exchanger { return a.MyOperator(t) },
		AllowHTTPLoopback: a.Cfg.RecordingAllowHTTPLoopback, Outcomes: recording.NewOutcomes(a.Metrics.Registry), Log: a.Log}
}

//go:embed samples/v2_*.json
var v2Samples embed.FS

// mountV2Samples serves the Webhook v2 samples of `calltrack dev` at
// /sandbox/myoperator/samples/v2/{call.summary,call.end,...}.json.
func mountV2Samples(e *echo.Echo) {
	e.GET("/sandbox/myoperator/samples/v2/:name", func(c echo.Context) error {
		name := path.Base(c.Param("name"))
		b, err := v2Samples.ReadFile("samples/v2_" + name)
		if err != nil {
			return echo.NewHTTPError(http.StatusNotFound, "no such sample")
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	})
}
