//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package sqlite

import (
	"os"
	"syscall"
)

const canLock = true

// tryLock takes an exclusive flock on f without waiting. flock locks
// belong to the open file, not to the process, so a second open of a file
// this process has locked cannot take it, and closing that second one
// does not let go of the first one's lock.
func tryLock(f *os.File) bool {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err == nil
		}
	}
}
