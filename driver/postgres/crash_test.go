package postgres_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(storetest.CrashChildEnv) != "" {
		if err := crashChild(os.Getenv("RAWEVENTS_CRASH_SCHEMA")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func crashChild(schema string) error {
	ctx := context.Background()
	d, err := postgres.Open(ctx, pgtest.URL(), &postgres.Config{Schema: schema})
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
	storetest.CheckAcknowledged(t, b.store, acks)
}
