package tasks

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
)

// MigrateSQLite creates or updates River's tables in the SQLite store of d.
// It is idempotent, and atomic: every pending migration runs in one write
// transaction, which also makes processes that migrate together apply each
// migration once. The result's versions are River's migration versions,
// distinct from the store's.
//
// Run it where the store is migrated (after the driver's Migrate), before
// any Client on d is used.
func MigrateSQLite(ctx context.Context, d *sqlite.Driver) (*driver.MigrateResult, error) {
	migrator, err := rivermigrate.New(riversqlite.New(d.DB()), &rivermigrate.Config{Logger: discardLogger()})
	if err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	tx, err := d.DB().BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock throughout
	if err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// MigrateTx is deprecated because some PostgreSQL migrations need a
	// commit between them; SQLite's run in one transaction.
	res, err := migrator.MigrateTx(ctx, tx, rivermigrate.DirectionUp, nil) //nolint:staticcheck // see above
	if err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	existing, err := migrator.ExistingVersionsTx(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	return migrateResult(res, existing), nil
}

// MigratePostgres creates or updates River's tables in the schema of the
// PostgreSQL store of d, creating the schema if needed. It is idempotent.
// Each migration commits on its own (some must); a session advisory lock
// keyed by the schema makes processes that migrate together take turns,
// so each migration is applied once. The result's versions are River's
// migration versions, distinct from the store's.
//
// Run it where the store is migrated (after the driver's Migrate), before
// any Client on d is used.
func MigratePostgres(ctx context.Context, d *postgres.Driver) (result *driver.MigrateResult, err error) {
	pool, schema := d.Pool(), d.Schema()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: discardLogger(), Schema: schema})
	if err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	defer conn.Release()
	key := migrationLockKey(schema)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, 0)`, key); err != nil {
		return nil, fmt.Errorf("tasks: migrate: lock: %w", err)
	}
	defer func() {
		if _, unlockErr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, 0)`, key); unlockErr != nil {
			// A connection that may still hold the lock must not go back
			// to the pool: closing it releases the lock.
			err = errors.Join(err, fmt.Errorf("tasks: migrate: unlock: %w", unlockErr), conn.Conn().Close(context.WithoutCancel(ctx)))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	existing, err := migrator.ExistingVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("tasks: migrate: %w", err)
	}
	return migrateResult(res, existing), nil
}

// migrationLockKey is the first key of the advisory lock that serialises
// River migrations of one schema.
func migrationLockKey(schema string) int32 {
	h := fnv.New32a()
	h.Write([]byte("rawevents.tasks:" + schema))
	return int32(h.Sum32()) //nolint:gosec // a hash: wrapping is fine
}

func migrateResult(res *rivermigrate.MigrateResult, existing []rivermigrate.Migration) *driver.MigrateResult {
	out := &driver.MigrateResult{}
	for _, v := range res.Versions {
		out.Applied = append(out.Applied, v.Version)
	}
	slices.Sort(out.Applied)
	for _, m := range existing {
		out.Version = max(out.Version, m.Version)
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
