//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package sqlite

import "os"

// canLock is false where flock is missing: owners are left to their
// leases.
const canLock = false

func tryLock(*os.File) bool { return false }
