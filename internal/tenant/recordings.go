package tenant

import (
	"fmt"
	"time"
)

// Recordings is a tenant's recording-link settings (the tenants file's `recordings:`).
type Recordings struct {
	// LinkTTL is how long calltrack's recording links in the CRM work after the call is
	// written; 0 (the default): they never expire.
	LinkTTL time.Duration
}

// recordingsYAML is the tenants file's `recordings:` block.
type recordingsYAML struct {
	LinkTTL string `yaml:"link_ttl"`
}

func (y recordingsYAML) parse() (Recordings, error) {
	var r Recordings
	if y.LinkTTL == "" || y.LinkTTL == "never" || y.LinkTTL == "0" {
		return r, nil
	}
	d, err := time.ParseDuration(y.LinkTTL)
	if err != nil {
		return r, fmt.Errorf("recordings.link_ttl %q: a Go duration (720h) or never: %w", y.LinkTTL, err)
	}
	if d < time.Hour {
		return r, fmt.Errorf("recordings.link_ttl %s: at least 1h (or never)", d)
	}
	r.LinkTTL = d
	return r, nil
}
