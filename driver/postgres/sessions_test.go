package postgres_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/storetest"
)

func claimChild(schema string) error {
	ctx := context.Background()
	d, err := postgres.Open(ctx, pgtest.URL(), &postgres.Config{Schema: schema})
	if err != nil {
		return err
	}
	d.MembersChanged(ctx, "s") // starts the listener, whose session vouches for the members
	return storetest.ClaimUntilKilled(ctx, d, func(ctx context.Context) (bool, error) {
		return vouched(ctx, d, "child", 2)
	}, os.Stdout)
}

// vouched reports whether owner's n memberships carry a session.
func vouched(ctx context.Context, d *postgres.Driver, owner string, n int) (bool, error) {
	var got int
	err := d.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{d.Schema(), "subscription_members"}.Sanitize()+
		` WHERE owner = $1 AND session_pid IS NOT NULL`, owner).Scan(&got)
	return got == n, err
}

// claimUntilVouched claims subscription "s" for owner on d until a
// session other than the one with pid not vouches for the membership, for
// at most 20 s, and returns that session's pid. Each claim must get all 4
// partitions.
func claimUntilVouched(t *testing.T, d *postgres.Driver, owner string, not int32) int32 {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n := storetest.ClaimCount(t, d, "s", owner); n != 4 {
			t.Fatalf("%s claimed %d, want 4", owner, n)
		}
		var pid *int32
		if err := d.Pool().QueryRow(context.Background(), `SELECT session_pid FROM `+pgx.Identifier{d.Schema(), "subscription_members"}.Sanitize()+
			` WHERE subscription = 's' AND owner = $1`, owner).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if pid != nil && *pid != not {
			return *pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new session vouches for %s after 20 s", owner)
		}
	}
}

// TestOwnerEnded: the partitions of a process killed with SIGKILL are
// taken at the next claim once its listener's backend has gone.
func TestOwnerEnded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "RAWEVENTS_CLAIM_SCHEMA="+b.schema)
	storetest.TestOwnerEnded(t, b.driver, child, nil)
}

// listening opens another driver on schema, as another process would, and
// starts its listener, whose session vouches for its members.
func listening(t *testing.T, schema string) *postgres.Driver {
	t.Helper()
	d, err := postgres.Open(context.Background(), pgtest.URL(), &postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.MembersChanged(context.Background(), "s")
	return d
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
	a := listening(t, b.schema)
	claimUntilVouched(t, a, "a", 0)
	if n := storetest.ClaimCount(t, b.driver, "s", "b"); n != 0 {
		t.Fatalf("b claimed %d of a live owner's partitions, want 0", n)
	}
	a.Close()
	storetest.ClaimEventually(t, b.driver, "s", "b", 4)

	c, err := postgres.Open(ctx, pgtest.URL(), &postgres.Config{Schema: b.schema})
	if err != nil {
		t.Fatal(err)
	}
	if n := storetest.ClaimCount(t, c, "u", "c"); n != 4 { // no listener: no session
		t.Fatalf("c claimed %d, want 4", n)
	}
	c.Close()
	if n := storetest.ClaimCount(t, b.driver, "u", "b"); n != 0 {
		t.Fatalf("b claimed %d of an owner without a session, want 0 until its lease runs out", n)
	}
}

// TestClaimAfterListenerLost: a process whose listener's backend is
// terminated connects it again, and its claims are vouched for by the new
// session.
func TestClaimAfterListenerLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	a := listening(t, b.schema)
	first := claimUntilVouched(t, a, "a", 0)
	if _, err := b.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, first); err != nil {
		t.Fatal(err)
	}
	claimUntilVouched(t, a, "a", first)
}

// TestClaimOtherRole: a role that may not see another role's backend
// start times trusts the pid alone: a live member of another role keeps
// its partitions, and once its backend has gone they are taken.
func TestClaimOtherRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const role = "rawevents_test_other"
	if _, err := b.pool.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+role+`') THEN CREATE ROLE `+role+` LOGIN; END IF;
		END $$`); err != nil {
		var exists bool
		if b.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); !exists {
			pgtest.SkipOrFail(t, "create a second role: "+err.Error())
		}
	}
	schema := pgx.Identifier{b.schema}.Sanitize()
	if _, err := b.pool.Exec(ctx, `GRANT USAGE ON SCHEMA `+schema+` TO `+role+`;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA `+schema+` TO `+role); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	other, err := postgres.Open(ctx, u.String(), &postgres.Config{Schema: b.schema})
	if err != nil {
		pgtest.SkipOrFail(t, "connect as a second role: "+err.Error())
	}
	t.Cleanup(func() { other.Close() })

	a := listening(t, b.schema)
	pid := claimUntilVouched(t, a, "a", 0)
	var hidden bool
	if err := other.Pool().QueryRow(ctx, `SELECT backend_start IS NULL FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&hidden); err != nil || !hidden {
		t.Fatalf("the second role sees a's backend start (%v, %v): the test tests nothing", hidden, err)
	}
	if n := storetest.ClaimCount(t, other, "s", "o"); n != 0 {
		t.Fatalf("another role claimed %d of a live owner's partitions, want 0", n)
	}
	a.Close()
	storetest.ClaimEventually(t, other, "s", "o", 4)
}
