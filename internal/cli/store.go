package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"io/fs"
	"iter"
	"os"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/tasks"
)

// Store is the part of rawevents.Store the commands use. rawevents.Store is
// generic over its driver's transaction type; this interface strips the
// type parameter so one command works on every backend.
type Store interface {
	Append(ctx context.Context, streamID string, expected event.ExpectedVersion, events ...event.Proposed) (*event.AppendResult, error)
	ReadStream(ctx context.Context, streamID string, opts *rawevents.ReadStreamOpts) ([]event.Event, error)
	ReadAll(ctx context.Context, opts *rawevents.ReadAllOpts) ([]event.Event, error)
	Follow(ctx context.Context, opts *rawevents.FollowOpts) iter.Seq2[event.Event, error]
	StreamInfo(ctx context.Context, streamID string) (*event.StreamInfo, error)
	Lookup(ctx context.Context, ids ...uuid.UUID) ([]event.Event, error)
	LookupKeys(ctx context.Context, keys ...event.StreamKey) ([]event.Event, error)
	AppendIfAbsent(ctx context.Context, events []rawevents.StreamEvent) ([]rawevents.Outcome, error)
	PrepareIfAbsent(events []rawevents.StreamEvent) (*rawevents.Prepared, error)
	AppendPrepared(ctx context.Context, batches ...*rawevents.Prepared) ([]rawevents.Outcome, error)
	Subscriptions(ctx context.Context) ([]string, error)
	SubscriptionStatus(ctx context.Context, name string) (*rawevents.SubscriptionStatus, error)
	Parked(ctx context.Context, subscription string, opts *rawevents.ParkedOpts) ([]driver.Parked, error)
	RetryParked(ctx context.Context, subscription string, position int64, d *rawevents.ParkedDecision) error
	SkipParked(ctx context.Context, subscription string, position int64, d *rawevents.ParkedDecision) error
	ListSnapshots(ctx context.Context, params *driver.ListSnapshotsParams) ([]driver.Snapshot, error)
	PruneSnapshots(ctx context.Context, params *driver.PruneSnapshotsParams) (int64, error)
	Close() error
}

var _ Store = (*rawevents.Store[*sql.Tx])(nil)

// openStore opens the store named by --store: a postgres:// or
// postgresql:// URL is a PostgreSQL database, anything else the path of a
// SQLite file, created if missing when create is set (commands that only
// read refuse a missing file rather than leave an empty one behind). Unlike the library, the CLI migrates on
// open, so the first command against a new file just works; the result says
// what the migration did. The caller closes the store.
func openStore(ctx context.Context, dsn string, create bool) (Store, *driver.MigrateResult, error) {
	if isPostgres(dsn) {
		return openPostgres(ctx, dsn)
	}
	if !create {
		if _, err := os.Stat(dsn); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no store at %s (the first append creates it)", dsn)
		}
	}
	d, err := sqlite.Open(dsn, nil)
	if err != nil {
		return nil, nil, err
	}
	return migrateAndOpen(ctx, d, func(ctx context.Context) error {
		_, err := tasks.MigrateSQLite(ctx, d)
		return err
	})
}

// openStoreForRead opens an existing store for commands that inspect it.
func openStoreForRead(ctx context.Context, dsn string) (Store, error) {
	s, _, err := openStore(ctx, dsn, false)
	return s, err
}

// openPostgres opens a PostgreSQL store. A "schema" query parameter in the
// URL picks the schema (default "rawevents").
func openPostgres(ctx context.Context, dsn string) (Store, *driver.MigrateResult, error) {
	d, err := postgres.Open(ctx, dsn, nil)
	if err != nil {
		return nil, nil, err
	}
	return migrateAndOpen(ctx, d, func(ctx context.Context) error {
		_, err := tasks.MigratePostgres(ctx, d)
		return err
	})
}

// migrateAndOpen migrates d, and the task queue's tables beside it, and
// returns a store on it, closing d if a step fails.
func migrateAndOpen[TTx any](ctx context.Context, d driver.Driver[TTx], migrateTasks func(context.Context) error) (Store, *driver.MigrateResult, error) {
	migrated, err := d.Migrate(ctx)
	if err != nil {
		return nil, nil, errors.Join(err, d.Close())
	}
	if err := migrateTasks(ctx); err != nil {
		return nil, nil, errors.Join(err, d.Close())
	}
	s, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		return nil, nil, errors.Join(err, d.Close())
	}
	return s, migrated, nil
}
