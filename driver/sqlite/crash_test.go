package sqlite_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/storetest"
)

func TestMain(m *testing.M) {
	storetest.Main(m, map[string]func() error{
		storetest.ClaimChildEnv: func() error { return claimChild(os.Getenv("RAWEVENTS_CLAIM_DB")) },
		storetest.CrashChildEnv: func() error { return crashChild(os.Getenv("RAWEVENTS_CRASH_DB")) },
	})
}

func crashChild(path string) error {
	ctx := context.Background()
	d, err := sqlite.Open(path, nil)
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
// checks that every append it acknowledged is in the file, which opens
// consistent and takes appends again.
func TestKillDuringAppends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crash.db")
	d, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	d.Close()

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "RAWEVENTS_CRASH_DB="+path)
	acks := storetest.KillDuringAppends(t, child, 300)

	d, err = sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckAcknowledged(t, store, acks)
}
