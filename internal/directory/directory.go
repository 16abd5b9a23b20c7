// Package directory holds the user types shared by the user sources (MyOperator's and
// each CRM's users API) and the user sync that matches them.
package directory

import "context"

// User is a person in a user directory: a MyOperator agent or a CRM user.
type User struct {
	ID      string            `json:"id"`
	Name    string            `json:"name,omitempty"`
	Email   string            `json:"email,omitempty"`
	Phones  []string          `json:"phones,omitempty"` // E.164
	Active  bool              `json:"active"`
	Role    string            `json:"role,omitempty"`
	Profile string            `json:"profile,omitempty"`
	Fields  map[string]string `json:"fields,omitempty"` // custom fields, for a custom match key
}

// Source lists every user of one directory (all pages), active or not.
type Source interface {
	Users(ctx context.Context) ([]User, error)
}
