package call

import (
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidMapping wraps validation failures of a mapping.
var ErrInvalidMapping = errors.New("mapping: invalid")

// MaxAgentIDLen bounds a MyOperator user id.
const MaxAgentIDLen = 128

// ValidateAgentID checks a MyOperator user id. MyOperator's are 16 hex characters, but
// the check is lenient (uuids, extensions, ids of another account's format pass): an id
// only has to be printable, on one line and at most MaxAgentIDLen bytes, because it is
// a Redis field, a journal key and a URL path segment of the admin API and console.
func ValidateAgentID(id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%w: myoperator_user_id is required", ErrInvalidMapping)
	}
	return printable("myoperator_user_id", id, MaxAgentIDLen)
}

// printable checks that a mapping's field is UTF-8 text of at most max bytes, with no
// control or invisible character.
func printable(field, s string, max int) error {
	switch {
	case len(s) > max:
		return fmt.Errorf("%w: %s is %d bytes long; at most %d are allowed", ErrInvalidMapping, field, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalidMapping, field)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %s has a control or invisible character (%U)", ErrInvalidMapping, field, r)
		}
	}
	return nil
}

// CRM kinds: the values of tenant.CRM.Kind (the tenants file's crm.kind), each with a
// known form of user ids (ValidateCRMUserID).
const (
	CRMKylas = "kylas"
	CRMZoho  = "zoho"
)

// ErrInvalidCRMUserID is a CRM user id not of the form the tenant's CRM gives its users
// (ValidateCRMUserID).
var ErrInvalidCRMUserID = errors.New("crm_user_id is not a user id of the tenant's CRM")

// MaxZohoIDLen bounds a Zoho id's digits (Zoho's run to 19).
const MaxZohoIDLen = 30

// IsZohoID reports whether s has the form of a Zoho CRM record or user id: 1 to
// MaxZohoIDLen ASCII digits. The Zoho adapter refuses any other id it is to send.
func IsZohoID(s string) bool {
	return s != "" && len(s) <= MaxZohoIDLen && strings.Trim(s, "0123456789") == ""
}

// ValidateCRMUserID checks that id has the form of a user id of the CRM kind, as that
// CRM's adapter will send it (docs/crm-contracts.md, "User ids"): Kylas user ids are
// whole numbers above 0 (the adapter sends ownerId as a JSON integer), Zoho's are
// strings of digits ("1386586000000078001"). An id of another form is refused here, by
// the API, rather than by the adapter at write time, which would dead-letter every call
// the id owns. The text is taken as it is: " 7", "+5", "007" or "1e3" are not ids, though
// a lenient number parser reads them as one. A CRM kind calltrack knows no id form of is
// not checked (the tenants file takes only kylas and zoho).
func ValidateCRMUserID(crmKind, id string) error {
	switch crmKind {
	case CRMKylas:
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 || strconv.FormatInt(n, 10) != id {
			return fmt.Errorf("%w: Kylas user ids are whole numbers above 0 in digits, with no sign, space or leading zero, at most 9223372036854775807 (e.g. 1001)", ErrInvalidCRMUserID)
		}
	case CRMZoho:
		if !IsZohoID(id) {
			return fmt.Errorf("%w: Zoho CRM user ids are digits only, at most %d (e.g. 1386586000000078001)", ErrInvalidCRMUserID, MaxZohoIDLen)
		}
	}
	return nil
}

// Bounds of what an admin types into a mapping (ValidateManual).
const (
	MaxNameLen  = 200
	MaxEmailLen = 254 // RFC 5321's path limit
)

// ValidateManual checks what an admin typed, beyond Validate: the CRM user id, name
// and email are printable text of sane length, the email an address, and the CRM user
// id has the form of a user id of the tenant's CRM, crmKind (ValidateCRMUserID: an id
// the adapter would refuse dead-letters every call of the agent). User sync's mappings
// are not held to it: their values come from the two directories as they are, and
// refusing one would leave that agent's calls unattributed.
func (m *Mapping) ValidateManual(crmKind string) error {
	if err := printable("crm_user_id", m.CRMUserID, MaxAgentIDLen); err != nil {
		return err
	}
	if err := ValidateCRMUserID(crmKind, m.CRMUserID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMapping, err)
	}
	if err := printable("name", m.Name, MaxNameLen); err != nil {
		return err
	}
	if m.Email == "" {
		return nil
	}
	if err := printable("email", m.Email, MaxEmailLen); err != nil {
		return err
	}
	if a, err := mail.ParseAddress(m.Email); err != nil || a.Address != m.Email {
		return fmt.Errorf("%w: email %q is not an address (name@domain)", ErrInvalidMapping, m.Email)
	}
	return nil
}

// Sources and statuses of a mapping.
const (
	MappingManual     = "manual"
	MappingEmailMatch = "email-match" // user sync, by email (exact or ignoring case)
	MappingPhoneMatch = "phone-match" // user sync, by phone number
	MappingFieldMatch = "field-match" // user sync, by a CRM user field holding the MyOperator id

	MappingActive    = "active"
	MappingPending   = "pending"
	MappingSuspended = "suspended"
)

// Mapping says which CRM user a MyOperator agent is. It lives apart from its storage
// (internal/mapping: Redis and the journal topic) so that user sync's matching, the
// console and the admin API can build and compare mappings without Redis or Kafka.
type Mapping struct {
	MyOperatorUserID string    `json:"myoperator_user_id"`
	MyOperatorUUID   string    `json:"myoperator_uuid,omitempty"` // the agent's uuid: Webhook v2 names agents by it
	CRMUserID        string    `json:"crm_user_id"`
	Email            string    `json:"email,omitempty"`
	Phones           []string  `json:"phones,omitempty"`
	Name             string    `json:"name,omitempty"`
	Source           string    `json:"source"`
	Status           string    `json:"status"`
	UpdatedAt        time.Time `json:"updated_at"`
	UpdatedBy        string    `json:"updated_by,omitempty"`
}

// Automatic reports whether the mapping was made by user sync (not by an admin): sync
// may change or remove it; a manual one only an admin removes.
func (m *Mapping) Automatic() bool { return m.Source != MappingManual }

// Owner is the call owner this mapping stands for.
func (m *Mapping) Owner() *Owner {
	return &Owner{CRMUserID: m.CRMUserID, Email: m.Email, Name: m.Name, Source: m.Source}
}

// Validate checks a mapping before it is stored.
func (m *Mapping) Validate() error {
	if err := ValidateAgentID(m.MyOperatorUserID); err != nil {
		return err
	}
	if strings.TrimSpace(m.CRMUserID) == "" {
		return fmt.Errorf("%w: crm_user_id is required", ErrInvalidMapping)
	}
	for _, p := range m.Phones {
		if !strings.HasPrefix(p, "+") || len(p) < 8 {
			return fmt.Errorf("%w: phone %q must be in E.164 form (+<country><number>)", ErrInvalidMapping, p)
		}
	}
	switch m.Status {
	case MappingActive, MappingPending, MappingSuspended:
	default:
		return fmt.Errorf("%w: status %q", ErrInvalidMapping, m.Status)
	}
	return nil
}
