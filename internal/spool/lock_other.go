//go:build !unix

package spool

import "os"

// flock: no advisory lock on this platform; the spool relies on one process per
// directory by deployment alone.
func flock(*os.File) error { return nil }

func heldElsewhere(*os.File) bool { return false }
