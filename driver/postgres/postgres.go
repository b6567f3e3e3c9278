// Package postgres is the PostgreSQL event store driver, on pgx v5
// (pgxpool). Every object lives in one schema (Config.Schema), so several
// stores can share a database.
//
// # Gap-free reading of the global log
//
// Positions come from a sequence, assigned when a row is inserted; rows
// become visible when their transaction commits. Two writers can commit
// out of order: a reader that has seen position 11 may later find 10
// committed. A reader that only remembers "the last position I saw" would
// skip 10 for ever. Invariant 5 of the design forbids that.
//
// The known answers and why this driver uses none of them as they are:
//
//   - Lock the events table (or one counter row) for the whole append, as
//     Python's eventsourcing does with LOCK TABLE ... IN EXCLUSIVE MODE:
//     correct, but every writer queues behind every other, fsync included.
//   - Wait a while at a gap, then skip it, as Marten's high-water-mark
//     agent did with its stale-sequence threshold: a transaction slower
//     than the threshold loses its events for readers.
//   - Store each row's transaction id (xid8) and read only below the
//     snapshot's xmin, as Emmett and watermill-sql do: readers must then
//     order by (transaction id, position), and after a dump and restore
//     into a new cluster the stored ids are meaningless (new transactions
//     get smaller ids than restored rows, so readers stall or skip).
//
// This driver keeps position order and only makes readers wait for writers
// that are really in flight ("the minimum position of in-flight
// transactions", the outbox technique described by Oskar Dudycz, with
// advisory locks as the registry of transactions in flight):
//
//  1. An append reads the sequence's last value L and takes a shared,
//     transaction-scoped advisory lock keyed by L+1 (plus a per-schema
//     prefix) before it calls nextval. Every position it gets is > L.
//     Shared locks never conflict, so writers do not wait for each other,
//     and the lock goes away when the transaction ends, whether it commits
//     or rolls back.
//  2. A reader reads a page. If the positions after its cursor are
//     contiguous, they are all committed and it returns them: that is the
//     common case and costs one query.
//  3. At a hole it computes the stable position (function stable_position):
//     the sequence's last value S, then min(key) over the advisory locks
//     in pg_locks. Any writer holding a position <= S took its lock before
//     S was read, so it is still listed unless it has ended. The reader
//     then reads again, in a new statement, up to min(S, key-1), and
//     never passes a position that may still commit.
//
// Nothing about a transaction is stored in the rows, so a dump and restore
// (pg_dump carries the sequence's value) changes nothing. Positions must
// stay below 2^40 (about 10^12 events) for the lock keys to fit.
//
// # Notifications
//
// Readers wait on LISTEN/NOTIFY. Append notifies after its transaction has
// committed, from a separate, coalescing goroutine: a NOTIFY inside the
// append's transaction would take PostgreSQL's global notify lock through
// the commit's fsync and serialise every writer's commit. AppendTx and
// AppendManyTx cannot see the caller's commit, so they notify inside the
// transaction.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/migration"
	"github.com/rawevents/rawevents/internal/signal"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

var _ driver.Driver[pgx.Tx] = (*Driver)(nil)

// DefaultSchema is the schema used when Config.Schema is empty.
const DefaultSchema = "rawevents"

var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,47}$`)

// Config configures the PostgreSQL driver. Nil means the defaults.
type Config struct {
	// Schema holds the store's tables. Lower-case letters, digits and
	// underscores, at most 48 characters. Default "rawevents".
	Schema string
	// AsyncCommit opts in to appends committed with synchronous_commit =
	// off: several times faster for small appends, but a crash of the
	// database server can lose the last fraction of a second of
	// acknowledged appends (it never corrupts the log). By default an
	// append commits synchronously even when the server or session has
	// synchronous_commit off.
	AsyncCommit bool
	// PollInterval is how often a waiting reader looks for changes no
	// notification announced (a writer that rolled back after taking
	// positions, a lost listener connection). Default 1s.
	PollInterval time.Duration
}

func (c *Config) withDefaults() (*Config, error) {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.Schema == "" {
		out.Schema = DefaultSchema
	}
	if out.PollInterval == 0 {
		out.PollInterval = time.Second
	}
	var errs []error
	if !schemaPattern.MatchString(out.Schema) {
		errs = append(errs, fmt.Errorf("postgres: schema %q: want lower-case letters, digits and underscores, at most 48", out.Schema))
	}
	if out.PollInterval < 0 {
		errs = append(errs, errors.New("postgres: PollInterval must not be negative"))
	}
	return &out, errors.Join(errs...)
}

// Driver stores events in a PostgreSQL schema.
type Driver struct {
	pool       *pgxpool.Pool
	ownsPool   bool
	config     *Config
	sql        sqlText
	queries    sync.Map // query text with placeholders -> rendered, see query
	migrations []migration.Migration

	changed       signal.Broadcaster
	members       sync.Map      // subscription name -> *signal.Broadcaster, see MembersChanged
	notify        chan struct{} // kicks the post-commit notifier
	stop          context.CancelFunc
	stopped       context.Context
	wg            sync.WaitGroup
	listenMu      sync.Mutex
	listening     bool
	stopListening context.CancelFunc      // ends the listener's connection, see relisten
	session       atomic.Pointer[session] // the listener's backend while it is connected
	ownTx         sync.Map                // the pgx.Tx values begun by InTx and not yet ended
	// sessionsVisible is 0 before Claim has asked, 1 when this role may
	// read pg_stat_activity, 2 when it may not.
	sessionsVisible atomic.Int32
}

// relisten ends the listener's connection; runListener connects again.
func (d *Driver) relisten() {
	d.listenMu.Lock()
	defer d.listenMu.Unlock()
	if d.stopListening != nil {
		d.stopListening()
	}
}

// session names a server backend: its pid and start time.
type session struct {
	pid   int32
	start time.Time
}

// sqlText holds the driver's statements with the schema filled in.
type sqlText struct {
	schema, channel string
	lockNS          int64
	appendEvents    string
	appendMany      string
	readAll         string
	readAllBounded  string
	readStream      string
	readStreamBack  string
	streamInfo      string
	stablePosition  string
	lookup          string
	lookupKeys      string
}

func newSQLText(schema string) sqlText {
	h := fnv.New32a()
	h.Write([]byte("rawevents:" + schema))
	ns := int64(h.Sum32() & 0x7FFFFF) // 23 bits: ns<<40 + position fits in a bigint
	q := pgx.Identifier{schema}.Sanitize()
	const cols = `position, event_id, stream_id, dedup_key, stream_version, type, schema_version, data, metadata, occurred_at, recorded_at`
	return sqlText{
		schema:  schema,
		channel: "rawevents_" + schema,
		lockNS:  ns,
		appendEvents: `SELECT r_duplicate, r_version, r_positions, r_versions, r_occurred_at, r_recorded_at FROM ` + q +
			`.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		appendMany: `SELECT r_versions, r_positions, r_occurred_at, r_recorded_at FROM ` + q +
			`.append_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		readAll:        `SELECT ` + cols + ` FROM ` + q + `.events WHERE position > $1 ORDER BY position LIMIT $2`,
		readAllBounded: `SELECT ` + cols + ` FROM ` + q + `.events WHERE position > $1 AND position <= $3 ORDER BY position LIMIT $2`,
		readStream:     `SELECT ` + cols + ` FROM ` + q + `.events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3`,
		readStreamBack: `SELECT ` + cols + ` FROM ` + q + `.events WHERE stream_id = $1 AND stream_version <= $2 ORDER BY stream_version DESC LIMIT $3`,
		streamInfo:     `SELECT version, last_position, created_at, updated_at FROM ` + q + `.streams WHERE stream_id = $1 AND version > 0`,
		stablePosition: `SELECT ` + q + `.stable_position()`,
		lookup:         `SELECT ` + cols + ` FROM ` + q + `.events WHERE event_id = ANY($1::uuid[])`,
		lookupKeys: `SELECT ` + cols + ` FROM ` + q + `.events WHERE dedup_key IS NOT NULL AND (stream_id, dedup_key) IN
			(SELECT k.stream_id, k.key FROM unnest($1::text[], $2::text[]) AS k(stream_id, key))`,
	}
}

// query returns text with the store's placeholders filled, rendering each
// text once: the subscription and snapshot queries run on every batch.
func (d *Driver) query(text string) string {
	if q, ok := d.queries.Load(text); ok {
		return q.(string)
	}
	q := d.sql.render(text)
	d.queries.Store(text, q)
	return q
}

// render fills a migration's placeholders.
func (s sqlText) render(text string) string {
	return strings.NewReplacer(
		"{schema}", pgx.Identifier{s.schema}.Sanitize(),
		"{channel}", s.channel,
		"{lockns}", strconv.FormatInt(s.lockNS, 10),
		"{lockbase}", strconv.FormatInt(s.lockNS<<40, 10),
	).Replace(text)
}

// New returns a driver on pool. The pool stays the caller's: Close does
// not close it. The driver opens one more connection of its own, outside
// the pool, to LISTEN for appends once a reader waits.
func New(pool *pgxpool.Pool, config *Config) (*Driver, error) {
	cfg, err := config.withDefaults()
	if err != nil {
		return nil, err
	}
	migrations, err := migration.Load(migrationsFS, "migrations")
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	d := &Driver{
		pool:       pool,
		config:     cfg,
		sql:        newSQLText(cfg.Schema),
		migrations: migrations,
		notify:     make(chan struct{}, 1),
		stop:       stop,
		stopped:    ctx,
	}
	d.wg.Go(d.runNotifier)
	return d, nil
}

// Open connects to the database at url and returns a driver that owns its
// pool. A "schema" query parameter in url sets Config.Schema when the
// config leaves it empty.
func Open(ctx context.Context, databaseURL string, config *Config) (*Driver, error) {
	cfg := Config{}
	if config != nil {
		cfg = *config
	}
	if u, err := url.Parse(databaseURL); err == nil && u.Query().Has("schema") {
		q := u.Query()
		if cfg.Schema == "" {
			cfg.Schema = q.Get("schema")
		}
		q.Del("schema")
		u.RawQuery = q.Encode()
		databaseURL = u.String()
	}
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	d, err := New(pool, &cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	d.ownsPool = true
	return d, nil
}

// Pool returns the driver's connection pool: begin the transactions you
// hand to AppendTx on it.
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Schema returns the schema that holds the store.
func (d *Driver) Schema() string { return d.config.Schema }

// SupportsListenNotify reports true: appends from any process wake readers.
func (d *Driver) SupportsListenNotify() bool { return true }

// AppendManyTxUndone reports false: a failed statement ends a
// PostgreSQL transaction.
func (d *Driver) AppendManyTxUndone() bool { return false }

// PollInterval implements driver.Driver.
func (d *Driver) PollInterval() time.Duration { return d.config.PollInterval }

// Changed implements driver.Driver. The first call starts the listener.
func (d *Driver) Changed(context.Context) <-chan struct{} {
	ch := d.changed.Wait()
	d.startListener()
	return ch
}

// MembersChanged implements driver.MembersNotifier: Claim and Release
// notify on the store's channel, with membersPrefix and the subscription's
// name as the payload, when a member joins or partitions are given up.
// The first call starts the listener.
func (d *Driver) MembersChanged(_ context.Context, subscription string) <-chan struct{} {
	ch := d.membersOf(subscription).Wait()
	d.startListener()
	return ch
}

func (d *Driver) membersOf(subscription string) *signal.Broadcaster {
	b, _ := d.members.LoadOrStore(subscription, &signal.Broadcaster{})
	return b.(*signal.Broadcaster)
}

// membersPrefix starts the payload of a notification about a
// subscription's members; one about appends is empty or a position.
const membersPrefix = "members:"

// wakeMembers wakes the claim loops of every subscription: notifications
// may have been missed.
func (d *Driver) wakeMembers() {
	d.members.Range(func(_, b any) bool {
		b.(*signal.Broadcaster).Broadcast()
		return true
	})
}

func (d *Driver) startListener() {
	d.listenMu.Lock()
	if !d.listening && d.stopped.Err() == nil {
		d.listening = true
		d.wg.Go(d.runListener)
	}
	d.listenMu.Unlock()
}

// Close stops the listener and notifier and closes the pool if the driver
// opened it.
func (d *Driver) Close() error {
	d.listenMu.Lock()
	d.stop()
	d.listenMu.Unlock()
	d.wg.Wait()
	d.changed.Broadcast()
	d.wakeMembers()
	if d.ownsPool {
		d.pool.Close()
	}
	return nil
}

// runListener holds a connection that LISTENs on the store's channel and
// wakes waiting readers on every notification (or, for one about members,
// the subscribers' claim loops). After a lost connection it reconnects and
// wakes them anyway, since notifications may have been missed meanwhile.
func (d *Driver) runListener() {
	const firstBackoff = 50 * time.Millisecond
	backoff := firstBackoff
	for d.stopped.Err() == nil {
		listened, err := d.listen()
		d.changed.Broadcast()
		d.wakeMembers()
		if d.stopped.Err() != nil {
			return
		}
		_ = err // the poll interval covers the time without a listener
		if listened {
			backoff = firstBackoff // a connection lost, not a server still down
		}
		select {
		case <-d.stopped.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listen holds the listener's connection until it fails or the driver
// stops; listened reports that it got as far as LISTEN.
func (d *Driver) listen() (listened bool, err error) {
	conn, err := pgx.ConnectConfig(d.stopped, d.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(d.stopped, "LISTEN "+pgx.Identifier{d.sql.channel}.Sanitize()); err != nil {
		return false, err
	}
	// The listener's backend vouches for this process's subscription
	// members (see Claim): the kernel closes a process's sockets however
	// it ends, and the backend ends with its connection. (A host that
	// crashes, or a network that splits, leaves it until the server's TCP
	// keepalive notices; the lease covers that.) A role that may not read
	// pg_stat_activity goes without: its members keep the lease rule. A
	// pooler in transaction mode breaks LISTEN, and this with it.
	var s session
	if err := conn.QueryRow(d.stopped, `SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()`).Scan(&s.pid, &s.start); err == nil {
		d.session.Store(&s)
		defer d.session.Store(nil)
	}
	listening, stop := context.WithCancel(d.stopped)
	defer stop()
	d.listenMu.Lock()
	d.stopListening = stop
	d.listenMu.Unlock()
	d.changed.Broadcast() // anything committed before LISTEN took effect
	d.wakeMembers()
	for {
		n, err := conn.WaitForNotification(listening)
		if err != nil {
			return true, err
		}
		if subscription, ok := strings.CutPrefix(n.Payload, membersPrefix); ok {
			d.membersOf(subscription).Broadcast()
		} else {
			d.changed.Broadcast()
		}
	}
}

// runNotifier sends one NOTIFY for any number of appends committed since
// the last one, outside the appends' transactions.
func (d *Driver) runNotifier() {
	for {
		select {
		case <-d.stopped.Done():
			return
		case <-d.notify:
			// NOTIFY assigns a transaction id, so its commit would wait
			// for an fsync while holding the notify lock; nothing in it
			// needs to be durable. A failed NOTIFY only delays other
			// processes' readers until their poll interval.
			_, _ = d.pool.Exec(d.stopped, `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')`, d.sql.channel)
		}
	}
}

func (d *Driver) announce() {
	d.changed.Broadcast()
	select {
	case d.notify <- struct{}{}:
	default: // a NOTIFY is already due
	}
}

// Migrate implements driver.Driver. Migrations run in one transaction under
// an advisory lock, so concurrent starts apply each migration once.
func (d *Driver) Migrate(ctx context.Context) (*driver.MigrateResult, error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, translate(ctx, "migrate", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	q := pgx.Identifier{d.config.Schema}.Sanitize()
	for _, stmt := range []string{
		`SELECT pg_advisory_xact_lock(` + strconv.FormatInt(d.sql.lockNS, 10) + `::int, 0)`,
		`CREATE SCHEMA IF NOT EXISTS ` + q,
		`CREATE TABLE IF NOT EXISTS ` + q + `.rawevents_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return nil, translate(ctx, "migrate", err)
		}
	}
	current, err := d.schemaVersion(ctx, tx)
	if err != nil {
		return nil, err
	}
	pending, err := migration.Pending(current, d.migrations)
	if err != nil {
		return nil, err
	}
	result := &driver.MigrateResult{Version: current}
	for _, m := range pending {
		if _, err := tx.Exec(ctx, d.sql.render(m.SQL)); err != nil {
			return nil, fmt.Errorf("postgres: migration %d (%s): %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.rawevents_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return nil, translate(ctx, "migrate", err)
		}
		result.Applied = append(result.Applied, m.Version)
		result.Version = m.Version
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, translate(ctx, "migrate", err)
	}
	return result, nil
}

// CheckSchema implements driver.Driver.
func (d *Driver) CheckSchema(ctx context.Context) error {
	current, err := d.schemaVersion(ctx, d.pool)
	if err != nil {
		return err
	}
	return migration.Check(current, d.migrations)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (d *Driver) schemaVersion(ctx context.Context, q querier) (int, error) {
	table := pgx.Identifier{d.config.Schema, "rawevents_migrations"}.Sanitize()
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
		return 0, translate(ctx, "read schema version", err)
	}
	if !exists {
		return 0, nil
	}
	var version int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+table).Scan(&version); err != nil {
		return 0, translate(ctx, "read schema version", err)
	}
	return version, nil
}

// Our own SQLSTATEs, raised by append_events and the immutability trigger.
const (
	codeWrongVersion   = "RE001"
	codeEventIDReused  = "RE002"
	codeUniqueViolated = "23505"
)

// translate maps pgx and PostgreSQL errors to the sentinels of package
// event. It is the one place this driver interprets errors.
func translate(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("postgres: %s: %w", op, ctxErr)
	}
	if strings.Contains(err.Error(), "closed pool") {
		return fmt.Errorf("postgres: %s: %w", op, event.ErrClosed)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolated {
		switch pgErr.ConstraintName {
		case "events_stream_version_key":
			return fmt.Errorf("postgres: %s: %w", op, event.ErrConcurrency)
		case "events_event_id_key":
			return fmt.Errorf("postgres: %s: %w", op, event.ErrEventIDReused)
		case "events_stream_dedup_key_idx":
			return fmt.Errorf("postgres: %s: another event of the stream has the same key: %w", op, event.ErrEventIDReused)
		}
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}
