package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/internal/pgtest"
)

// claimChildEnv makes the test binary a process that claims every
// partition of subscriptions "s" and "t" in the schema it names, says so
// on stdout once its listener's session vouches for it, and waits to be
// killed.
const claimChildEnv = "RAWEVENTS_CLAIM_CHILD_SCHEMA"

func claimChild(schema string) error {
	ctx := context.Background()
	d, err := postgres.Open(ctx, pgtest.URL(), &postgres.Config{Schema: schema})
	if err != nil {
		return err
	}
	n, err := claimWithSession(ctx, d, "child", "s", "t")
	if err != nil {
		return err
	}
	fmt.Printf("claimed %d\n", n)
	select {}
}

// claimWithSession starts d's listener and claims subscriptions for owner
// until its memberships carry the listener's session. It returns how many
// partitions the last round of claims got.
func claimWithSession(ctx context.Context, d *postgres.Driver, owner string, subscriptions ...string) (int, error) {
	d.MembersChanged(ctx, subscriptions[0])
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n := 0
		for _, sub := range subscriptions {
			claims, err := d.Claim(ctx, claimOf(sub, owner))
			if err != nil {
				return 0, err
			}
			n += len(claims)
		}
		var vouched int
		if err := d.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{d.Schema(), "subscription_members"}.Sanitize()+
			` WHERE owner = $1 AND session_pid IS NOT NULL`, owner).Scan(&vouched); err != nil {
			return 0, err
		}
		if vouched == len(subscriptions) {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s: no session recorded within 20 s", owner)
}

// claimOf is a claim of a subscription of 4 partitions under an hour's
// lease: long enough that only the session check can free a partition
// within a test.
func claimOf(subscription, owner string) *driver.ClaimParams {
	return &driver.ClaimParams{Subscription: subscription, Partitions: 4, Owner: owner, Lease: time.Hour}
}

func claimCount(t *testing.T, d *postgres.Driver, subscription, owner string) int {
	t.Helper()
	claims, err := d.Claim(context.Background(), claimOf(subscription, owner))
	if err != nil {
		t.Fatal(err)
	}
	return len(claims)
}

// claimEventually claims until it gets want partitions: a backend ends a
// moment after its client's socket closes.
func claimEventually(t *testing.T, d *postgres.Driver, subscription, owner string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := claimCount(t, d, subscription, owner)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s claimed %d partitions, want %d", subscription, owner, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClaimAfterProcessKilled: a process killed with SIGKILL while it
// holds partitions under a long lease loses them once its listener's
// backend has gone, not when the lease runs out; while it lives, it keeps
// them.
func TestClaimAfterProcessKilled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), claimChildEnv+"="+b.schema)
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

	if n := claimCount(t, b.driver, "s", "parent"); n != 0 {
		t.Fatalf("claimed %d partitions held by a live process, want 0", n)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait() //nolint:errcheck // killed
	claimEventually(t, b.driver, "s", "parent", 4)
	if n := claimCount(t, b.driver, "t", "parent"); n != 4 {
		t.Fatalf("t: claimed %d partitions after their owner's session ended, want 4", n)
	}
}

// TestClaimOwnersInOneProcess: a driver's owners keep their partitions
// from another driver's while its listener is connected; a closed
// driver's owner loses them; an owner without a session (a process of an
// older release, or one whose listener has not connected) keeps them
// until its lease runs out.
func TestClaimOwnersInOneProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	a, err := postgres.Open(ctx, pgtest.URL(), &postgres.Config{Schema: b.schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if n, err := claimWithSession(ctx, a, "a", "s"); err != nil || n != 4 {
		t.Fatalf("a claimed %d, %v; want 4", n, err)
	}
	if n := claimCount(t, b.driver, "s", "b"); n != 0 {
		t.Fatalf("b claimed %d of a live owner's partitions, want 0", n)
	}
	a.Close()
	claimEventually(t, b.driver, "s", "b", 4)

	c, err := postgres.Open(ctx, pgtest.URL(), &postgres.Config{Schema: b.schema})
	if err != nil {
		t.Fatal(err)
	}
	if n := claimCount(t, c, "u", "c"); n != 4 { // no listener: no session
		t.Fatalf("c claimed %d, want 4", n)
	}
	c.Close()
	if n := claimCount(t, b.driver, "u", "b"); n != 0 {
		t.Fatalf("b claimed %d of an owner without a session, want 0 until its lease runs out", n)
	}
}
