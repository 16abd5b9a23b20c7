// Package callstate keeps the CRM writer's state of each call in Redis, under one key
// schema (Keys): per call, a hash with its lease, status (creating, unknown, written),
// CRM record id, the log as written or sent, pending amendments and whether it is
// parked; per tenant, the set of parked calls and their redrive counts; and the epoch
// marker that says since when Redis holds its data. Memory is the same store in
// memory, for tests and fakes.
package callstate

import (
	"fmt"
	"time"
)

// StateTTL is how long a call's state is kept after its last change: the window in
// which a redelivery, replay or backfill of the call is recognised without asking the
// CRM. It matches the longest retention of a topic a call can be replayed from (the
// dead-letter topic, 30 days).
const StateTTL = 30 * 24 * time.Hour

// Keys is the one key schema of the writer's state.
type Keys struct{ Prefix string }

// Call is the hash of one call's state.
func (k Keys) Call(tenant, callID string) string {
	return fmt.Sprintf("%s:call:%s:%s", k.Prefix, tenant, callID)
}

// Parked is the hash of a tenant's parked (unattributed) calls: call id → log JSON.
func (k Keys) Parked(tenant string) string { return fmt.Sprintf("%s:parked:%s", k.Prefix, tenant) }

// Redrives is the hash of a tenant's parked-call re-publications: call id →
// "count|last unix time".
func (k Keys) Redrives(tenant string) string { return fmt.Sprintf("%s:redrive:%s", k.Prefix, tenant) }

// Epoch is the marker of when Redis's current data began (never expires).
func (k Keys) Epoch() string { return k.Prefix + ":epoch" }

// Fields of the call hash.
const (
	fieldLease   = "lease"   // "<token>|<expiry unix ms>"
	fieldStatus  = "status"  // creating, unknown, written; absent: new
	fieldRecord  = "record"  // CRM record id
	fieldLog     = "log"     // call.Log JSON
	fieldPending = "pending" // call.RecordingEvent JSON
	fieldParked  = "parked"  // "1"
	fieldSince   = "since"   // unix ms
)
