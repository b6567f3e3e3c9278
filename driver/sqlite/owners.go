package sqlite

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// ownerLocks tells a crashed process from a live one. A lease says only
// that its owner was alive when it last renewed it; alone, it leaves a
// crashed process's partitions idle until it runs out. Processes that
// share a SQLite file share a kernel, so while an owner is a member of a
// subscription its driver holds an exclusive lock (flock) on a file named
// after it, in the directory beside the database (FILE-owners). The kernel
// lets go of the lock when the process ends, however it ends: a claim that
// can take another owner's lock knows that owner has ended, and frees its
// partitions at once instead of a lease later. An owner without a file (a
// process of an older release, or a platform without flock) keeps its
// partitions until its lease runs out, as before.
type ownerLocks struct {
	dir  string
	mu   sync.Mutex
	held map[string]*ownerLock // by owner
}

type ownerLock struct {
	file          *os.File
	subscriptions map[string]bool // those it is a member of
}

func newOwnerLocks(dbPath string) *ownerLocks {
	return &ownerLocks{dir: dbPath + "-owners", held: map[string]*ownerLock{}}
}

func (o *ownerLocks) path(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return filepath.Join(o.dir, hex.EncodeToString(sum[:16]))
}

// hold locks owner's file, if this driver does not hold it already, before
// owner becomes a member of subscription. It is best effort: an owner it
// cannot lock (the directory is read-only, or another process runs under
// the same name) is left to its lease.
func (o *ownerLocks) hold(owner, subscription string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if l, ok := o.held[owner]; ok {
		l.subscriptions[subscription] = true
		return
	}
	if !canLock || os.MkdirAll(o.dir, 0o755) != nil {
		return
	}
	f, err := os.OpenFile(o.path(owner), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	if !tryLock(f) {
		f.Close() //nolint:errcheck // read-only use
		return
	}
	o.held[owner] = &ownerLock{file: f, subscriptions: map[string]bool{subscription: true}}
}

// letGo records that owner left subscription; after its last one, it
// removes owner's file and lets go of the lock.
func (o *ownerLocks) letGo(owner, subscription string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l, ok := o.held[owner]
	if !ok {
		return
	}
	delete(l.subscriptions, subscription)
	if len(l.subscriptions) == 0 {
		delete(o.held, owner)
		os.Remove(l.file.Name()) //nolint:errcheck // a file left behind is removed by the next claim that finds it
		l.file.Close()           //nolint:errcheck // closing lets go of the lock
	}
}

// ended reports whether owner, a member this driver does not hold, has
// ended: its file is there and nobody holds its lock.
func (o *ownerLocks) ended(owner string) bool {
	o.mu.Lock()
	_, mine := o.held[owner]
	o.mu.Unlock()
	if mine || !canLock {
		return false
	}
	f, err := os.OpenFile(o.path(owner), os.O_RDWR, 0)
	if err != nil {
		return false // no file: an owner that took no lock
	}
	defer f.Close() //nolint:errcheck // closing lets go of the lock
	return tryLock(f)
}

// forget removes the file of an owner that ended and is a member of no
// subscription any more. Owners are unique per process run: no one locks
// it again.
func (o *ownerLocks) forget(owner string) {
	if err := os.Remove(o.path(owner)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return // left for a later claim
	}
}

// close lets go of every lock this driver holds. It leaves the files: a
// closed driver works no partitions, and the next claim that finds its
// owners' files unlocked frees their partitions, as for a process that
// crashed.
func (o *ownerLocks) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for owner, l := range o.held {
		delete(o.held, owner)
		l.file.Close() //nolint:errcheck // closing lets go of the lock
	}
}
