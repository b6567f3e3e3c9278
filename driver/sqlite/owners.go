package sqlite

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
)

// ownerLocks tells a crashed process from a live one. A lease says only
// that its owner was alive when it last renewed it; alone, it leaves a
// crashed process's partitions idle until it runs out. Processes that
// share a SQLite file share a kernel, so while an owner is a member of a
// subscription its driver holds an exclusive lock (flock) on a file of its
// own, in the directory beside the database (FILE-owners), and the member
// row names the file (subscription_members.lock). The kernel lets go of
// the lock when the process ends, however it ends: a claim that can take
// another member's lock knows that member's process has ended, and frees
// its partitions at once instead of a lease later.
//
// Each driver names its files at random, so no two drivers, in one
// process or in two, ever share one, whatever names their owners have.
// flock on NFS is emulated with POSIX locks, which belong to a process and
// not to an open file; SQLite's WAL mode does not work there either.
type ownerLocks struct {
	dir    string
	mu     sync.Mutex
	held   map[string]*ownerLock // by owner
	closed bool
}

type ownerLock struct {
	name          string // the file's, in dir
	file          *os.File
	subscriptions map[string]bool // those the owner is a member of
}

func newOwnerLocks(dbPath string) *ownerLocks {
	return &ownerLocks{dir: dbPath + "-owners", held: map[string]*ownerLock{}}
}

// hold returns the name of the file this driver holds locked for owner,
// taking a new one if it holds none, before owner becomes a member of
// subscription, and whether this is the first time it holds it for that
// subscription. It returns "" where it cannot lock one (no flock, a
// read-only directory, a closed driver): the member is left to its lease.
func (o *ownerLocks) hold(owner, subscription string) (name string, first bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if l, ok := o.held[owner]; ok {
		first = !l.subscriptions[subscription]
		l.subscriptions[subscription] = true
		return l.name, first
	}
	if !canLock || o.closed || os.MkdirAll(o.dir, 0o755) != nil {
		return "", false
	}
	var b [16]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	name = hex.EncodeToString(b[:])
	f, err := os.OpenFile(filepath.Join(o.dir, name), os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", false
	}
	if !tryLock(f) {
		f.Close()           //nolint:errcheck // read-only
		os.Remove(f.Name()) //nolint:errcheck // nobody names it
		return "", false
	}
	o.held[owner] = &ownerLock{name: name, file: f, subscriptions: map[string]bool{subscription: true}}
	return name, true
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
		o.tidy()
	}
}

// tidy removes the directory once it is empty. A driver that creates its
// file in it meanwhile fails to, and locks one at its next claim.
func (o *ownerLocks) tidy() {
	os.Remove(o.dir) //nolint:errcheck // not empty: another member's file is there
}

// ended reports whether the member whose lock is the file name has ended:
// the file is there and nobody holds its lock. A file this driver holds
// cannot be locked again through another open file, so its own members
// are never found ended.
func (o *ownerLocks) ended(name string) bool {
	if !canLock || name == "" || filepath.Base(name) != name {
		return false
	}
	f, err := os.Open(filepath.Join(o.dir, name))
	if err != nil {
		return false // gone: removed by another claim that found it ended
	}
	defer f.Close() //nolint:errcheck // closing lets go of the lock
	return tryLock(f)
}

// forget removes the file of a member that ended, once no membership
// names it. Nobody locks it again: its name was its driver's alone.
func (o *ownerLocks) forget(name string) {
	os.Remove(filepath.Join(o.dir, name)) //nolint:errcheck // left for a later claim
	o.tidy()
}

// close lets go of every lock this driver holds, and takes no more. It
// leaves the files: a closed driver works no partitions, and the next
// claim that finds its members' files unlocked frees their partitions, as
// for a process that crashed.
func (o *ownerLocks) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	for owner, l := range o.held {
		delete(o.held, owner)
		l.file.Close() //nolint:errcheck // closing lets go of the lock
	}
}
