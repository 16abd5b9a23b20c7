package sandbox

// recordingsState and routesRecordings: the recordings link API (owned by the Webhook v2 work).
type recordingsState struct{}

func (s *Server) routesRecordings() {}
