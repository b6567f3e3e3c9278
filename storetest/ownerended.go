package storetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/rawevents/rawevents/driver"
)

// ClaimChildEnv is set in the environment of the child process that
// TestOwnerEnded starts. A driver's TestMain checks it and, when set,
// opens its store and calls ClaimUntilKilled instead of running tests.
const ClaimChildEnv = "RAWEVENTS_STORETEST_CLAIM_CHILD"

// ClaimOf is a claim of a subscription of 4 partitions under an hour's
// lease: long enough that only a driver's check that the owner's process
// has ended can free a partition within a test.
func ClaimOf(subscription, owner string) *driver.ClaimParams {
	return &driver.ClaimParams{Subscription: subscription, Partitions: 4, Owner: owner, Lease: time.Hour}
}

// ClaimCount claims ClaimOf(subscription, owner) and returns how many
// partitions the owner holds.
func ClaimCount[TTx any](t *testing.T, state driver.Subscriptions[TTx], subscription, owner string) int {
	t.Helper()
	claims, err := state.Claim(context.Background(), ClaimOf(subscription, owner))
	if err != nil {
		t.Fatal(err)
	}
	return len(claims)
}

// ClaimEventually claims until owner holds want partitions, for at most
// 20 s: a driver may see a process's end a moment after it.
func ClaimEventually[TTx any](t *testing.T, state driver.Subscriptions[TTx], subscription, owner string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := ClaimCount(t, state, subscription, owner)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s holds %d partitions, want %d", subscription, owner, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ClaimUntilKilled is the child's side of TestOwnerEnded: it claims every
// partition of subscriptions "s" and "t" as owner "child", again until
// vouched reports that the driver can see those memberships end with the
// process (nil: at once), writes "claimed N" to out, and waits to be
// killed.
func ClaimUntilKilled[TTx any](ctx context.Context, state driver.Subscriptions[TTx], vouched func(context.Context) (bool, error), out io.Writer) error {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n := 0
		for _, sub := range []string{"s", "t"} {
			claims, err := state.Claim(ctx, ClaimOf(sub, "child"))
			if err != nil {
				return err
			}
			n += len(claims)
		}
		ok := vouched == nil
		if !ok {
			var err error
			if ok, err = vouched(ctx); err != nil {
				return err
			}
		}
		if ok {
			fmt.Fprintf(out, "claimed %d\n", n)
			<-ctx.Done()
			return ctx.Err()
		}
	}
	return fmt.Errorf("claim child: the driver did not vouch for its members within 20 s")
}

// TestOwnerEnded starts child (a test binary whose TestMain sees
// ClaimChildEnv and calls ClaimUntilKilled on the same database as
// state), and checks that while the child lives its partitions stay its
// own, and that once it is killed with SIGKILL a claim by another owner
// takes them, in both subscriptions, long before their hour's lease runs
// out. after, if not nil, runs once they are taken, for what a driver
// checks of its own.
func TestOwnerEnded[TTx any](t *testing.T, state driver.Subscriptions[TTx], child *exec.Cmd, after func(t *testing.T)) {
	t.Helper()
	line, err := bufio.NewReader(startChild(t, child, ClaimChildEnv)).ReadString('\n')
	if err != nil || line != "claimed 8\n" {
		t.Fatalf("child said %q, %v; want it to claim 8 partitions", line, err)
	}
	if n := ClaimCount(t, state, "s", "parent"); n != 0 {
		t.Fatalf("claimed %d partitions held by a live process, want 0", n)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait() //nolint:errcheck // killed
	for _, sub := range []string{"s", "t"} {
		ClaimEventually(t, state, sub, "parent", 4)
		status, err := state.SubscriptionStatus(context.Background(), sub)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range status.Partitions {
			if p.Owner != "parent" {
				t.Errorf("%s: partition %d: owner %q, want parent", sub, p.Partition, p.Owner)
			}
		}
	}
	if after != nil {
		after(t)
	}
}
