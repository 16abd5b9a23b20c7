package sandbox

// usersState and routesUsers: the users API (owned by the user-sync work).
type usersState struct{}

func (s *Server) routesUsers() {}
