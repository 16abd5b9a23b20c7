// Package myoperator parses MyOperator Calling Webhooks (v1): it finds the JSON
// log in whatever request shape MyOperator sent (ExtractJSON) and turns afterCall
// and inCall payloads into calltrack's call.Log and call.Live (ParseAfterCall,
// ParseInCall). Parsing is lenient, because MyOperator sends numbers as strings or
// numbers and omits keys freely, but strict about what a call needs: an id, a
// direction and an outcome. Every rejection wraps ErrMalformed.
//
// ParseV2 does the same for Webhook v2, MyOperator's successor (one envelope for every
// call event): it maps each event type onto a call.Live, call.Log or amendment
// (call.RecordingEvent), and leaves event types it does not know to the caller.
package myoperator
