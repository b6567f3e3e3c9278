package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/storetest"
)

func claimChild(path string) error {
	d, err := sqlite.Open(path, nil)
	if err != nil {
		return err
	}
	return storetest.ClaimUntilKilled(context.Background(), d, nil, os.Stdout)
}

func migrated(t *testing.T, path string) *sqlite.Driver {
	t.Helper()
	d, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestOwnerEnded: the partitions of a process killed with SIGKILL are
// taken at the next claim; the dead owner's lock file goes with its last
// membership.
func TestOwnerEnded(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "owners.db")
	d := migrated(t, path)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "RAWEVENTS_CLAIM_DB="+path)
	storetest.TestOwnerEnded(t, d, child, func(t *testing.T) {
		if entries, err := os.ReadDir(path + "-owners"); err != nil || len(entries) != 1 {
			t.Errorf("owner files %v, %v; want the parent's alone", entries, err)
		}
	})
}

// TestClaimOwnersInOneProcess: owners of two drivers of one process keep
// their partitions from each other while open; a closed driver's owner
// loses them at the next claim; an owner whose file is gone (a process of
// an older release has none) keeps them until its lease runs out.
func TestClaimOwnersInOneProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "owners.db")
	a := migrated(t, path)
	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	if n := storetest.ClaimCount(t, a, "s", "a"); n != 4 {
		t.Fatalf("a claimed %d, want 4", n)
	}
	if n := storetest.ClaimCount(t, b, "s", "b"); n != 0 {
		t.Fatalf("b claimed %d of a live owner's partitions, want 0", n)
	}
	a.Close()
	if n := storetest.ClaimCount(t, b, "s", "b"); n != 4 {
		t.Fatalf("b claimed %d after a's driver closed, want 4", n)
	}

	c, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	files, err := filepath.Glob(filepath.Join(path+"-owners", "*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("owner files %v, %v; want b's alone", files, err)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if n := storetest.ClaimCount(t, c, "s", "c"); n != 0 {
		t.Fatalf("c claimed %d of an owner without a file, want 0 until its lease runs out", n)
	}
	if err := c.Release(context.Background(), &driver.ReleaseParams{Subscription: "s", Owner: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-owners"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the owners' directory after the last member left: %v, want it gone", err)
	}
}

// TestClaimOwnerNameReused: an owner whose name outlives its process (a
// fixed Subscription.Owner) and comes back before anyone found it ended
// is alive under its new lock, and its last run's file goes.
func TestClaimOwnerNameReused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "owners.db")
	first := migrated(t, path)
	if n := storetest.ClaimCount(t, first, "s", "w"); n != 4 {
		t.Fatalf("w claimed %d, want 4", n)
	}
	first.Close() // as if killed: its file stays, unlocked

	again := migrated(t, path)
	if n := storetest.ClaimCount(t, again, "s", "w"); n != 4 {
		t.Fatalf("w's second run claimed %d, want its 4", n)
	}
	other := migrated(t, path)
	if n := storetest.ClaimCount(t, other, "s", "x"); n != 0 {
		t.Fatalf("x claimed %d of w's partitions while w runs again, want 0", n)
	}
	if files, err := filepath.Glob(filepath.Join(path+"-owners", "*")); err != nil || len(files) != 2 {
		t.Fatalf("owner files %v, %v; want the second run's and x's (the first run's removed)", files, err)
	}
}
