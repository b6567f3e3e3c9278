package postgres_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/storetest"
)

func TestMain(m *testing.M) {
	storetest.Main(m, map[string]func() error{
		storetest.ClaimChildEnv: func() error { return claimChild(os.Getenv("RAWEVENTS_CLAIM_SCHEMA")) },
		storetest.CrashChildEnv: func() error { return crashChild(os.Getenv("RAWEVENTS_CRASH_SCHEMA")) },
	})
}

func crashChild(schema string) error {
	ctx := context.Background()
	d, err := postgres.Open(ctx, withParam(pgtest.URL(), "application_name", crashApp(schema)), &postgres.Config{Schema: schema})
	if err != nil {
		return err
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		return err
	}
	return storetest.AppendUntilKilled(ctx, store, os.Stdout)
}

// TestKillDuringAppends kills a process with SIGKILL while it appends and
// checks that every append it acknowledged is stored, the log is
// consistent, and the store takes appends again.
func TestKillDuringAppends(t *testing.T) {
	t.Parallel()
	b := setup(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "RAWEVENTS_CRASH_SCHEMA="+b.schema)
	acks := storetest.KillDuringAppends(t, child, 300)
	endBackends(t, b.pool, crashApp(b.schema))
	storetest.CheckAcknowledged(t, b.store, acks)
}

func crashApp(schema string) string { return "crash-" + schema }

func withParam(dsn, key, value string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn // the child's Open reports it
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// endBackends ends the server processes of a killed client and waits until
// they are gone. A backend outlives its client until it notices the closed
// socket, and its open transaction keeps gap-free readers below its
// position until then, which is right for a reader but not what a check
// of the log after the crash wants to race with.
func endBackends(t *testing.T, pool *pgxpool.Pool, app string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left int
		err := pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&left)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends of the killed child are still there", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
