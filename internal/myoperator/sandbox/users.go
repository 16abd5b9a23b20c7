package sandbox

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
)

// UsersPageSize is how many users one GET /user page holds.
const UsersPageSize = 20

// User is a MyOperator user as the sandbox keeps it. ID is the user_id (16 hex in
// the real service) that webhooks carry as _id.
type User struct {
	ID              string `json:"user_id"`
	UUID            string `json:"uuid"`
	Name            string `json:"name"`
	Email           string `json:"email"`
	ContactNumber   string `json:"contact_number"`   // 10-digit national number
	AlternateNumber string `json:"alternate_number"` // may be empty
	CountryCode     string `json:"country_code"`     // "+91"
	Extension       string `json:"extension"`
	Enabled         bool   `json:"-"`
}

// usersState is the users API's data.
type usersState struct {
	mu    sync.Mutex
	byID  map[string]User
	order int // insertion counter, for a stable listing order
	seq   map[string]int
}

func (s *Server) routesUsers() {
	s.users = &usersState{byID: map[string]User{}, seq: map[string]int{}}
	s.mux.HandleFunc("GET /user", s.listUsers)
	// Control: no auth.
	s.mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		out := []userJSON{}
		for _, u := range s.Users() {
			out = append(out, u.json())
		}
		writeUsersJSON(w, http.StatusOK, map[string]any{"users": out})
	})
	s.mux.HandleFunc("PUT /users/{id}", s.putUser)
	s.mux.HandleFunc("DELETE /users/{id}", s.deleteUser)
}

// PutUser stores (or replaces) a user. A missing uuid is derived from the id, a
// missing country code is "+91".
func (s *Server) PutUser(u User) {
	if u.UUID == "" {
		h := sha256.Sum256([]byte(u.ID))
		u.UUID = hex.EncodeToString(h[:8])
	}
	if u.CountryCode == "" {
		u.CountryCode = "+91"
	}
	st := s.users
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.seq[u.ID]; !ok {
		st.order++
		st.seq[u.ID] = st.order
	}
	st.byID[u.ID] = u
}

// RemoveUser deletes a user; it reports whether there was one.
func (s *Server) RemoveUser(id string) bool {
	st := s.users
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.byID[id]
	delete(st.byID, id)
	delete(st.seq, id)
	return ok
}

// Users returns the users in the order they were first added.
func (s *Server) Users() []User {
	st := s.users
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]User, 0, len(st.byID))
	for _, u := range st.byID {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b User) int { return cmp.Compare(st.seq[a.ID], st.seq[b.ID]) })
	return out
}

// userJSON is a user in GET /user's shape: is_enabled as MyOperator sends it, "1"/"0".
type userJSON struct {
	User
	IsEnabled string `json:"is_enabled"`
}

func (u User) json() userJSON {
	e := "0"
	if u.Enabled {
		e = "1"
	}
	return userJSON{User: u, IsEnabled: e}
}

// listUsers serves GET /user?token=&page=N (page from 1):
// {"status":"success","code":200,"data":[...],"next_page":N|null}.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	if s.account(r.URL.Query().Get("token")) == "" {
		writeUsersJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "code": 400, "message": "not an authorized request"})
		return
	}
	page := 1
	if p := r.URL.Query().Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			writeUsersJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "code": 400, "message": "page must be a number >= 1"})
			return
		}
		page = n
	}
	all := s.Users()
	from := min((page-1)*UsersPageSize, len(all))
	to := min(from+UsersPageSize, len(all))
	data := make([]userJSON, 0, to-from)
	for _, u := range all[from:to] {
		data = append(data, u.json())
	}
	var next any
	if to < len(all) {
		next = page + 1
	}
	writeUsersJSON(w, http.StatusOK, map[string]any{"status": "success", "code": 200, "data": data, "next_page": next})
}

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// putUser upserts a user: {"name","email","contact_number","is_enabled"} (plus the
// optional "alternate_number", "extension", "uuid"); is_enabled defaults to true and
// may be a boolean, 1/0 or "1"/"0".
func (s *Server) putUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !userIDPattern.MatchString(id) {
		writeUsersJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "code": 400, "message": "user id must be 1-64 letters, digits, _ . -"})
		return
	}
	var b struct {
		Name            string          `json:"name"`
		Email           string          `json:"email"`
		ContactNumber   string          `json:"contact_number"`
		AlternateNumber string          `json:"alternate_number"`
		Extension       string          `json:"extension"`
		UUID            string          `json:"uuid"`
		IsEnabled       json.RawMessage `json:"is_enabled"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeUsersJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "code": 400, "message": "bad user body: " + err.Error()})
		return
	}
	enabled := true
	switch string(b.IsEnabled) {
	case "", "null", "true", "1", `"1"`, `"true"`:
	case "false", "0", `"0"`, `"false"`:
		enabled = false
	default:
		writeUsersJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "code": 400, "message": "is_enabled must be true/false or 1/0"})
		return
	}
	u := User{ID: id, UUID: b.UUID, Name: b.Name, Email: b.Email, ContactNumber: b.ContactNumber,
		AlternateNumber: b.AlternateNumber, Extension: b.Extension, Enabled: enabled}
	s.PutUser(u)
	for _, x := range s.Users() {
		if x.ID == id {
			u = x
		}
	}
	writeUsersJSON(w, http.StatusOK, u.json())
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	if !s.RemoveUser(r.PathValue("id")) {
		writeUsersJSON(w, http.StatusNotFound, map[string]any{"status": "error", "code": 404, "message": "user not found"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeUsersJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
