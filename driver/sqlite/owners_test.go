package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/sqlite"
)

// claimChildEnv makes the test binary a process that claims every
// partition of subscriptions "s" and "t" in the database it names, says so
// on stdout, and waits to be killed.
const claimChildEnv = "RAWEVENTS_CLAIM_CHILD_DB"

func claimChild(path string) error {
	d, err := sqlite.Open(path, nil)
	if err != nil {
		return err
	}
	n := 0
	for _, sub := range []string{"s", "t"} {
		claims, err := d.Claim(context.Background(), claimOf(sub, "child"))
		if err != nil {
			return err
		}
		n += len(claims)
	}
	fmt.Printf("claimed %d\n", n)
	select {}
}

// claimOf is a claim of a subscription of 4 partitions under an hour's
// lease: long enough that only the ownership check can free a partition
// within a test.
func claimOf(subscription, owner string) *driver.ClaimParams {
	return &driver.ClaimParams{Subscription: subscription, Partitions: 4, Owner: owner, Lease: time.Hour}
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

func claimCount(t *testing.T, d *sqlite.Driver, subscription, owner string) int {
	t.Helper()
	claims, err := d.Claim(context.Background(), claimOf(subscription, owner))
	if err != nil {
		t.Fatal(err)
	}
	return len(claims)
}

// TestClaimAfterProcessKilled: a process killed with SIGKILL while it
// holds partitions under a long lease loses them at the next claim of
// another process, not when the lease runs out; while it lives, it keeps
// them.
func TestClaimAfterProcessKilled(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "owners.db")
	d := migrated(t, path)

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), claimChildEnv+"="+path)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() }) //nolint:errcheck // already killed in the test
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "claimed 8\n" {
		t.Fatalf("child said %q, %v; want it to claim 8 partitions", line, err)
	}
	ownerFiles := func() int {
		t.Helper()
		entries, err := os.ReadDir(path + "-owners")
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}

	if n := claimCount(t, d, "s", "parent"); n != 0 {
		t.Fatalf("claimed %d partitions held by a live process, want 0", n)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait() //nolint:errcheck // killed
	for i, sub := range []string{"s", "t"} {
		if n := claimCount(t, d, sub, "parent"); n != 4 {
			t.Fatalf("%s: claimed %d partitions after their owner was killed, want all 4", sub, n)
		}
		status, err := d.SubscriptionStatus(context.Background(), sub)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range status.Partitions {
			if p.Owner != "parent" {
				t.Errorf("%s: partition %d: owner %q, want parent", sub, p.Partition, p.Owner)
			}
		}
		// The killed owner's file stays while it is a member of "t".
		if n, want := ownerFiles(), 2-i; n != want {
			t.Errorf("after claiming %s: %d owner files, want %d", sub, n, want)
		}
	}
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

	if n := claimCount(t, a, "s", "a"); n != 4 {
		t.Fatalf("a claimed %d, want 4", n)
	}
	if n := claimCount(t, b, "s", "b"); n != 0 {
		t.Fatalf("b claimed %d of a live owner's partitions, want 0", n)
	}
	a.Close()
	if n := claimCount(t, b, "s", "b"); n != 4 {
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
	if n := claimCount(t, c, "s", "c"); n != 0 {
		t.Fatalf("c claimed %d of an owner without a file, want 0 until its lease runs out", n)
	}
}
