// Package rawtest gives tests a fresh, migrated event store of their own,
// on the embedded SQLite driver, on PostgreSQL (both with the task queue's
// tables, see package tasks) or in memory, closed when the test ends.
//
// PostgreSQL comes from RAWEVENTS_TEST_DATABASE_URL (default: the local
// server, user postgres, database test); each store lives in a schema of
// its own that is dropped afterwards, so tests run in parallel. Without a
// reachable server the test is skipped, except when CI is set, where it
// fails.
package rawtest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/tasks"
)

// SQLite returns a store in a fresh SQLite file in t's temporary
// directory.
func SQLite(t testing.TB) *rawevents.Store[*sql.Tx] {
	t.Helper()
	return SQLiteFile(t, filepath.Join(t.TempDir(), "events.db"))
}

// SQLiteFile returns a store in the SQLite file at path, created and
// migrated if needed: a second file beside a test's store holds read
// models, say.
func SQLiteFile(t testing.TB, path string) *rawevents.Store[*sql.Tx] {
	t.Helper()
	d, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := open(t, d)
	if _, err := tasks.MigrateSQLite(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return store
}

// Postgres returns a store in a fresh schema of the test database.
func Postgres(t testing.TB) *rawevents.Store[pgx.Tx] {
	t.Helper()
	pool := pgtest.Pool(t)
	d, err := postgres.New(pool, &postgres.Config{Schema: pgtest.Schema(t, pool)})
	if err != nil {
		t.Fatal(err)
	}
	store := open(t, d)
	if _, err := tasks.MigratePostgres(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return store
}

func open[TTx any](t testing.TB, d driver.Driver[TTx]) *rawevents.Store[TTx] {
	t.Helper()
	ctx := context.Background()
	if _, err := d.Migrate(ctx); err != nil {
		d.Close()
		t.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}
