package zoho

// Tenants name their time zone (IANA, e.g. "Asia/Kolkata"); embed the zone
// database so that works in minimal containers without /usr/share/zoneinfo.
import _ "time/tzdata"
