// Package sqlite is the embedded event store driver: one SQLite file, pure
// Go (modernc.org/sqlite, no cgo), in WAL mode.
//
// Durability: the file is opened with synchronous=FULL, so an acknowledged
// append survives a power cut. Config.Synchronous "NORMAL" is a faster,
// weaker opt-in: in WAL mode it can lose the last transactions (never
// corrupt the file) if the machine, not just the process, goes down.
//
// Concurrency: SQLite admits one writer at a time. The driver keeps one
// write connection (transactions start with BEGIN IMMEDIATE, so a writer
// never has to upgrade a read lock) and a pool of read connections, which
// in WAL mode read while the writer writes. Because writes are serialised,
// positions are assigned in commit order and the global log has no
// in-flight gaps.
//
// Notification: appends made through this Driver wake waiting readers at
// once. Appends by another process, or through AppendTx (whose commit the
// driver does not see), are seen within Config.PollInterval.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/migration"
	"github.com/rawevents/rawevents/internal/signal"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

var _ driver.Driver[*sql.Tx] = (*Driver)(nil)

// Config configures the SQLite driver. Nil means the defaults.
type Config struct {
	// Synchronous is SQLite's synchronous setting: "FULL" (the default,
	// durable) or "NORMAL" (faster; see the package documentation).
	Synchronous string
	// ReadConns is the size of the read pool. Default 4.
	ReadConns int
	// BusyTimeout is how long a writer waits for another process holding
	// the write lock. Default 10s.
	BusyTimeout time.Duration
	// PollInterval is how often a waiting reader looks for changes it was
	// not told about. Default 100ms.
	PollInterval time.Duration
	// WriteCacheBytes is the page cache of the write connection. Default
	// 64 MiB: SQLite's own 2 MB is soon smaller than the indexes a writer
	// adds to at random places (the streams' versions, a read model's
	// columns), and each miss reads a page back from the file.
	WriteCacheBytes int64
}

func (c *Config) withDefaults() (*Config, error) {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.Synchronous == "" {
		out.Synchronous = "FULL"
	}
	out.Synchronous = strings.ToUpper(out.Synchronous)
	if out.ReadConns == 0 {
		out.ReadConns = 4
	}
	if out.BusyTimeout == 0 {
		out.BusyTimeout = 10 * time.Second
	}
	if out.WriteCacheBytes == 0 {
		out.WriteCacheBytes = 64 << 20
	}
	if out.PollInterval == 0 {
		out.PollInterval = 100 * time.Millisecond
	}
	var errs []error
	if out.Synchronous != "FULL" && out.Synchronous != "NORMAL" && out.Synchronous != "EXTRA" {
		errs = append(errs, fmt.Errorf("sqlite: Synchronous %q: want FULL, EXTRA or NORMAL", out.Synchronous))
	}
	if out.ReadConns < 0 {
		errs = append(errs, errors.New("sqlite: ReadConns must not be negative"))
	}
	if out.WriteCacheBytes < 0 {
		errs = append(errs, errors.New("sqlite: WriteCacheBytes must not be negative"))
	}
	if out.BusyTimeout < 0 || out.PollInterval < 0 {
		errs = append(errs, errors.New("sqlite: BusyTimeout and PollInterval must not be negative"))
	}
	return &out, errors.Join(errs...)
}

// walAutocheckpoint is how many WAL pages a commit may leave before it
// copies them back into the database file (SQLite's default is 1,000).
// The committing writer does that work while every other writer waits;
// doing it less often copies a page rewritten by many transactions (the
// right edge of an index, a busy stream's row) once instead of each time.
// The WAL grows to about this many pages (40 MB with 4 KB pages) before a
// checkpoint.
const walAutocheckpoint = 10_000

// Driver stores events in one SQLite file.
type Driver struct {
	write      *sql.DB
	read       *sql.DB
	config     *Config
	changed    signal.Broadcaster
	migrations []migration.Migration
	owners     *ownerLocks
}

// Open opens (creating if needed) the SQLite file at path. It does not
// migrate; call Migrate.
func Open(path string, config *Config) (*Driver, error) {
	cfg, err := config.withDefaults()
	if err != nil {
		return nil, err
	}
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: %q is not a usable database file path", path)
	}
	migrations, err := migration.Load(migrationsFS, "migrations")
	if err != nil {
		return nil, err
	}
	pragmas := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=foreign_keys(1)",
		cfg.BusyTimeout.Milliseconds(), cfg.Synchronous)
	drv := &sqlite3.Driver{}
	// The writer keeps its statement journals in memory (temp_store):
	// a statement that inserts many rows inside a transaction journals
	// every page it changes, so that it can be undone alone, and on disk
	// that doubled the pages an append of a processor's batch writes.
	write := sql.OpenDB(&connector{dsn: path + "?" + pragmas + fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)&_pragma=temp_store(MEMORY)&_pragma=cache_size(%d)", walAutocheckpoint, -max(cfg.WriteCacheBytes>>10, 1)) + "&_txlock=immediate", drv: drv})
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// Open the write connection now so that the file exists in WAL mode
	// before the readers open it, and so that a bad path fails here.
	if err := write.Ping(); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read := sql.OpenDB(&connector{dsn: path + "?" + pragmas + "&_pragma=query_only(1)", drv: drv})
	read.SetMaxOpenConns(cfg.ReadConns)
	read.SetMaxIdleConns(cfg.ReadConns)
	return &Driver{write: write, read: read, config: cfg, migrations: migrations, owners: newOwnerLocks(path)}, nil
}

// DB returns the write connection pool (one connection). Begin the
// transactions you hand to AppendTx on it: they start with BEGIN IMMEDIATE.
// River's SQLite driver (riversqlite) takes this same *sql.DB.
func (d *Driver) DB() *sql.DB { return d.write }

// ReadDB returns the read connection pool: queries only, many at once,
// never waiting for the writer.
func (d *Driver) ReadDB() *sql.DB { return d.read }

// SupportsListenNotify reports false: only this process's appends wake
// readers at once.
func (d *Driver) SupportsListenNotify() bool { return false }

// AppendManyTxUndone reports true: a failed statement undoes only its
// own changes, a stored id or key fails an INSERT before the streams are
// written, and an AppendManyTx of more than one INSERT runs inside a
// savepoint.
func (d *Driver) AppendManyTxUndone() bool { return true }

// Changed implements driver.Driver.
func (d *Driver) Changed(context.Context) <-chan struct{} { return d.changed.Wait() }

// PollInterval implements driver.Driver.
func (d *Driver) PollInterval() time.Duration { return d.config.PollInterval }

// Close closes both connection pools and wakes waiting readers.
func (d *Driver) Close() error {
	err := errors.Join(d.read.Close(), d.write.Close())
	d.owners.close()
	d.changed.Broadcast()
	return err
}

// Migrate implements driver.Driver. Migrations run in one write transaction,
// so two processes starting together apply each migration once.
func (d *Driver) Migrate(ctx context.Context) (*driver.MigrateResult, error) {
	tx, err := d.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, translate(ctx, "migrate", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS rawevents_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return nil, translate(ctx, "migrate", err)
	}
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return nil, err
	}
	pending, err := migration.Pending(current, d.migrations)
	if err != nil {
		return nil, err
	}
	result := &driver.MigrateResult{Version: current}
	for _, m := range pending {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return nil, fmt.Errorf("sqlite: migration %d (%s): %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rawevents_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixMicro()); err != nil {
			return nil, translate(ctx, "migrate", err)
		}
		result.Applied = append(result.Applied, m.Version)
		result.Version = m.Version
	}
	if err := tx.Commit(); err != nil {
		return nil, translate(ctx, "migrate", err)
	}
	return result, nil
}

// CheckSchema implements driver.Driver.
func (d *Driver) CheckSchema(ctx context.Context) error {
	current, err := schemaVersion(ctx, d.read)
	if err != nil {
		return err
	}
	return migration.Check(current, d.migrations)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var exists int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'rawevents_migrations'`).Scan(&exists); err != nil {
		return 0, translate(ctx, "read schema version", err)
	}
	if exists == 0 {
		return 0, nil
	}
	var version int
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM rawevents_migrations`).Scan(&version); err != nil {
		return 0, translate(ctx, "read schema version", err)
	}
	return version, nil
}

// translate maps SQLite and database/sql errors to the sentinels of package
// event. It is the one place this driver interprets errors.
func translate(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("sqlite: %s: %w", op, ctxErr)
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed") {
		return fmt.Errorf("sqlite: %s: %w", op, event.ErrClosed)
	}
	var sqliteErr *sqlite3.Error
	if errors.As(err, &sqliteErr) && sqliteErr.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE {
		// "UNIQUE constraint failed: events.stream_id, events.dedup_key"
		// names the stream too: the key is looked for first.
		if strings.Contains(sqliteErr.Error(), "events.dedup_key") {
			return fmt.Errorf("sqlite: %s: another event of the stream has the same key: %w", op, event.ErrEventIDReused)
		}
		if strings.Contains(sqliteErr.Error(), "events.stream_id") {
			return fmt.Errorf("sqlite: %s: %w", op, event.ErrConcurrency)
		}
		if strings.Contains(sqliteErr.Error(), "events.event_id") {
			return fmt.Errorf("sqlite: %s: %w", op, event.ErrEventIDReused)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}
