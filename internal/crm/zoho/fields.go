package zoho

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
)

// fieldsTTL is how long the Calls module's field metadata is reused: picklists and
// lengths change rarely (an admin edits the layout), and each fetch is a request.
const fieldsTTL = time.Hour

// recordingMaxLen is Voice_Recording__s's length when the metadata does not say:
// a 100-character URL field (a third-party copy of the Calls schema; unconfirmed, no
// public Zoho source found — the stricter reading, docs/crm-contracts.md).
const recordingMaxLen = 100

// callFields is what calltrack needs of the Calls module's field metadata
// (GET /crm/v8/settings/fields?module=Calls).
type callFields struct {
	results      []string // Call_Result's picklist values (actual_value)
	recordingMax int      // Voice_Recording__s's length
}

type fieldCache struct {
	mu  sync.Mutex
	at  time.Time
	val *callFields
}

// callFields returns the Calls field metadata, fetched at most once per fieldsTTL.
// nil when it cannot be read (the caller then keeps the disposition in the
// description only).
func (a *Adapter) callFields(ctx context.Context) *callFields {
	a.fields.mu.Lock()
	defer a.fields.mu.Unlock()
	if a.fields.val != nil && time.Since(a.fields.at) < fieldsTTL {
		return a.fields.val
	}
	const op = "zoho: Calls field metadata"
	r, err := a.send(crm.WithRequestOp(ctx, crm.RequestFields), op, http.MethodGet, "/crm/v8/settings/fields?module=Calls", "", nil)
	if err == nil && (r.resp.StatusCode < 200 || r.resp.StatusCode > 299) {
		err = apiError(op, r)
	}
	var body struct {
		Fields []struct {
			APIName string `json:"api_name"`
			Length  int    `json:"length"`
			Values  []struct {
				Actual string `json:"actual_value"`
			} `json:"pick_list_values"`
		} `json:"fields"`
	}
	if err == nil {
		err = json.Unmarshal(r.data, &body)
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("zoho: cannot read the Calls field metadata; dispositions go to the description only")
		return a.fields.val // the last good answer, if any
	}
	f := &callFields{recordingMax: recordingMaxLen}
	for _, fd := range body.Fields {
		switch fd.APIName {
		case "Call_Result":
			for _, v := range fd.Values {
				if v.Actual != "" && v.Actual != "-None-" {
					f.results = append(f.results, v.Actual)
				}
			}
		case "Voice_Recording__s":
			if fd.Length > 0 {
				f.recordingMax = fd.Length
			}
		}
	}
	a.fields.val, a.fields.at = f, time.Now()
	return f
}

// result is the Call_Result value for a disposition: its name (the text before the
// agent's comment, call.DispositionCommentSep) when Call_Result's picklist has it,
// spelt as the picklist spells it; "" otherwise (Zoho refuses free text).
func (f *callFields) result(disposition string) string {
	if f == nil {
		return ""
	}
	return call.DispositionName(disposition, f.results)
}
