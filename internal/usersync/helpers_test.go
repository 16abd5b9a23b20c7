package usersync_test

import "github.com/calltrack/calltrack/internal/call"

func callAgent(id, email, phone string) call.Agent {
	return call.Agent{ID: id, Email: email, Phone: phone}
}
