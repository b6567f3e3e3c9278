package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/pgtest"
)

func positions(t *testing.T, store *rawevents.Store[pgx.Tx], after int64) []int64 {
	t.Helper()
	events, err := store.ReadAll(context.Background(), &rawevents.ReadAllOpts{After: after})
	if err != nil {
		t.Fatal(err)
	}
	out := []int64{}
	for _, e := range events {
		out = append(out, e.Position)
	}
	return out
}

// TestReaderWaitsForEarlierTransaction builds the out-of-order commit by
// hand: a transaction takes the first positions and stays open while
// another commits the next one. A naive "position > last" read would
// return the later one and skip the first ones for ever; the store returns
// nothing until they are settled. The open transaction appends with
// AppendTx, or to several streams with AppendManyTx.
func TestReaderWaitsForEarlierTransaction(t *testing.T) {
	t.Parallel()
	writes := map[string]func(ctx context.Context, store *rawevents.Store[pgx.Tx], tx pgx.Tx) ([]int64, error){
		"AppendTx": func(ctx context.Context, store *rawevents.Store[pgx.Tx], tx pgx.Tx) ([]int64, error) {
			res, err := store.AppendTx(ctx, tx, "slow", event.NoStream, event.Proposed{Type: "t"})
			if err != nil {
				return nil, err
			}
			return []int64{res.LastPosition()}, nil
		},
		"AppendManyTx": func(ctx context.Context, store *rawevents.Store[pgx.Tx], tx pgx.Tx) ([]int64, error) {
			results, err := store.AppendManyTx(ctx, tx, []rawevents.StreamAppend{
				{StreamID: "slow-b", Expected: event.NoStream, Events: []event.Proposed{{Type: "t"}}},
				{StreamID: "slow-a", Expected: event.NoStream, Events: []event.Proposed{{Type: "t"}, {Type: "t"}}},
			})
			if err != nil {
				return nil, err
			}
			var out []int64
			for _, r := range results {
				for _, e := range r.Events {
					out = append(out, e.Position)
				}
			}
			return out, nil
		},
	}
	for name, write := range writes {
		for _, outcome := range []string{"Commit", "Rollback"} {
			t.Run(name+"/"+outcome, func(t *testing.T) {
				t.Parallel()
				testReaderWaitsForEarlierTransaction(t, write, outcome)
			})
		}
	}
}

func testReaderWaitsForEarlierTransaction(t *testing.T, write func(context.Context, *rawevents.Store[pgx.Tx], pgx.Tx) ([]int64, error), outcome string) {
	ctx := context.Background()
	b := setup(t)
	slow, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx) //nolint:errcheck
	first, err := write(ctx, b.store, slow)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.store.Append(ctx, "fast", event.NoStream, event.Proposed{Type: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if first[len(first)-1] >= second.LastPosition() {
		t.Fatalf("positions %v and %d: the scenario needs the open transaction to hold the lower ones", first, second.LastPosition())
	}
	var naive []int64
	if err := b.pool.QueryRow(ctx, fmt.Sprintf(`SELECT array_agg(position ORDER BY position) FROM %s.events WHERE position > 0`, b.schema)).Scan(&naive); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(naive) != fmt.Sprint([]int64{second.LastPosition()}) {
		t.Fatalf("a plain query sees %v; the test setup is wrong", naive)
	}
	if got := positions(t, b.store, 0); len(got) != 0 {
		t.Fatalf("read %v while positions %v may still commit", got, first)
	}
	want := []int64{second.LastPosition()}
	if outcome == "Commit" {
		if err := slow.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		want = append(first, second.LastPosition())
	} else if err := slow.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := positions(t, b.store, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after %s read %v, want %v", strings.ToLower(outcome), got, want)
	}
}

// TestStoresShareADatabase checks that two schemas are two stores: their
// logs, and their writers in flight, do not see each other.
func TestStoresShareADatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := setup(t), setup(t)
	open, err := a.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Rollback(ctx) //nolint:errcheck
	if _, err := a.store.AppendTx(ctx, open, "a", event.NoStream, event.Proposed{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Append(ctx, "b", event.NoStream, event.Proposed{Type: "t"}, event.Proposed{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if got := positions(t, b.store, 0); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("store b reads %v, want [1 2]: store a's open transaction must not hold it back", got)
	}
	if got := positions(t, a.store, 0); len(got) != 0 {
		t.Fatalf("store a reads %v before its transaction commits", got)
	}
}

// TestDumpAndRestore dumps a store with pg_dump, restores it into a new
// database, and checks that the restored store reads, appends and follows
// gap-free: nothing of a transaction's identity is stored in the rows.
func TestDumpAndRestore(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"pg_dump", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI", tool)
			}
			t.Skipf("%s not found", tool)
		}
	}
	ctx := context.Background()
	src := setup(t)
	for i := range 3 {
		if _, err := src.store.Append(ctx, "before-dump", event.Exact(int64(i)), event.Proposed{Type: "t", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}

	dbName := "restore_" + src.schema
	if _, err := src.pool.Exec(ctx, `CREATE DATABASE `+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := src.pool.Exec(context.Background(), `DROP DATABASE IF EXISTS `+dbName+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	u, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + dbName
	restoredURL := u.String()

	dump := exec.CommandContext(ctx, "pg_dump", "--schema="+src.schema, "--no-owner", pgtest.URL())
	restore := exec.CommandContext(ctx, "psql", "-v", "ON_ERROR_STOP=1", "-q", restoredURL)
	pipe, err := dump.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	restore.Stdin = pipe
	var dumpErr, restoreOut strings.Builder
	dump.Stderr, restore.Stdout, restore.Stderr = &dumpErr, &restoreOut, &restoreOut
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	if err := restore.Run(); err != nil {
		t.Fatalf("restore: %v\n%s", err, restoreOut.String())
	}
	if err := dump.Wait(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, dumpErr.String())
	}

	d, err := postgres.Open(ctx, restoredURL, &postgres.Config{Schema: src.schema})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	restored, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		t.Fatalf("restored store: %v", err)
	}
	if got := positions(t, restored, 0); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("restored log reads %v, want [1 2 3]", got)
	}

	// After the restore: an open transaction holds position 4 while 5
	// commits; readers must wait for 4, then see both.
	slow, err := d.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx) //nolint:errcheck
	if _, err := restored.AppendTx(ctx, slow, "after-restore", event.NoStream, event.Proposed{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := restored.Append(ctx, "before-dump", event.Exact(3), event.Proposed{Type: "t"}); err != nil {
		t.Fatalf("append after restore with the version from before the dump: %v", err)
	}
	if got := positions(t, restored, 3); len(got) != 0 {
		t.Fatalf("read %v while position 4 is in flight", got)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := positions(t, restored, 3); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("after commit read %v, want [4 5]", got)
	}
}
