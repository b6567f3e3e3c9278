package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/storetest"
)

func newDriver(t *testing.T) (*sqlite.Driver, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	d, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) *storetest.Harness[*sql.Tx] {
		ctx := context.Background()
		d, _ := newDriver(t)
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		store, err := rawevents.NewStore(ctx, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &storetest.Harness[*sql.Tx]{
			Store:    store,
			Begin:    func(ctx context.Context) (*sql.Tx, error) { return d.DB().BeginTx(ctx, nil) },
			Commit:   func(_ context.Context, tx *sql.Tx) error { return tx.Commit() },
			Rollback: func(_ context.Context, tx *sql.Tx) error { return tx.Rollback() },
			Exec: func(ctx context.Context, query string) error {
				_, err := d.DB().ExecContext(ctx, strings.ReplaceAll(query, "{events}", "events"))
				return err
			},
		}
	})
}

func TestSchemaVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, _ := newDriver(t)

	if _, err := rawevents.NewStore(ctx, d, nil); !errors.Is(err, event.ErrSchemaOutdated) {
		t.Fatalf("new store on an empty file: err = %v, want ErrSchemaOutdated", err)
	}
	res, err := d.Migrate(ctx)
	if err != nil || len(res.Applied) == 0 {
		t.Fatalf("migrate: %+v, %v", res, err)
	}
	again, err := d.Migrate(ctx)
	if err != nil || len(again.Applied) != 0 || again.Version != res.Version {
		t.Fatalf("second migrate applied %v (err %v), want nothing", again.Applied, err)
	}
	if _, err := d.DB().ExecContext(ctx, `INSERT INTO rawevents_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	_, err = rawevents.NewStore(ctx, d, nil)
	var se *event.SchemaError
	if !errors.Is(err, event.ErrSchemaTooNew) || !errors.As(err, &se) || se.Database != 999 {
		t.Fatalf("newer schema: err = %v, want ErrSchemaTooNew from version 999", err)
	}
	if _, err := d.Migrate(ctx); !errors.Is(err, event.ErrSchemaTooNew) {
		t.Fatalf("migrate on a newer schema: err = %v", err)
	}
}

func TestDurableByDefault(t *testing.T) {
	t.Parallel()
	d, _ := newDriver(t)
	var journal string
	var sync int
	if err := d.DB().QueryRow(`PRAGMA journal_mode`).Scan(&journal); err != nil {
		t.Fatal(err)
	}
	if err := d.DB().QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if journal != "wal" || sync != 2 { // 2 = FULL
		t.Fatalf("journal_mode %s synchronous %d, want wal and 2 (FULL)", journal, sync)
	}
}

// TestWriteCache: the writer's page cache is 64 MiB unless configured,
// and its statement journals stay in memory.
func TestWriteCache(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		bytes int64
		want  int
	}{{0, -65536}, {1 << 20, -1024}} {
		d, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"), &sqlite.Config{WriteCacheBytes: tt.bytes})
		if err != nil {
			t.Fatal(err)
		}
		var cache, temp int
		if err := d.DB().QueryRow(`PRAGMA cache_size`).Scan(&cache); err != nil {
			t.Fatal(err)
		}
		if err := d.DB().QueryRow(`PRAGMA temp_store`).Scan(&temp); err != nil {
			t.Fatal(err)
		}
		d.Close()
		if cache != tt.want || temp != 2 { // 2 = MEMORY
			t.Errorf("WriteCacheBytes %d: cache_size %d temp_store %d, want %d and 2", tt.bytes, cache, temp, tt.want)
		}
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:", "a?b"} {
		if _, err := sqlite.Open(path, nil); err == nil {
			t.Errorf("Open(%q) succeeded", path)
		}
	}
	_, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"), &sqlite.Config{Synchronous: "OFF", ReadConns: -1, WriteCacheBytes: -1})
	if err == nil || !strings.Contains(err.Error(), "Synchronous") || !strings.Contains(err.Error(), "ReadConns") || !strings.Contains(err.Error(), "WriteCacheBytes") {
		t.Fatalf("err = %v, want every problem reported", err)
	}
}

// TestStatementCache: a full statement cache makes room for a new
// statement by closing one no one is reading; a statement whose rows are
// open stays, and its rows read on.
func TestStatementCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tx, err := d.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	const open = `SELECT value FROM json_each('[1,2,3]')`
	rows, err := tx.QueryContext(ctx, open)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatal("no first row")
	}
	last := ""
	for i := range 400 {
		last = fmt.Sprintf(`SELECT %d + ?`, i)
		var n int
		if err := tx.QueryRowContext(ctx, last, 1).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("%s = %d, %v", last, n, err)
		}
	}
	var values []int
	for ok := true; ok; ok = rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	if err := rows.Close(); err != nil || fmt.Sprint(values) != "[1 2 3]" {
		t.Fatalf("rows of the open statement: %v, %v", values, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	cached, err := d.CachedStatements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cached) > 256 || !cached[last] || !cached[open] {
		t.Fatalf("%d cached; the last one %v, the open one %v", len(cached), cached[last], cached[open])
	}
}
