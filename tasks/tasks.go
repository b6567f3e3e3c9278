package tasks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
)

// DefaultMaxWorkers is how many tasks of the default queue one process
// works at a time when Config.Queues is empty. Tasks mostly wait on
// something else (an HTTP call, a source's API), so it is far more than
// the number of cores. It also bounds throughput: River fetches at most
// MaxWorkers tasks per fetch and fetches at most every FetchCooldown
// (100 ms), so one queue of one process works at most about ten times
// MaxWorkers short tasks a second.
const DefaultMaxWorkers = 100

// Config configures a Client. Nil means an insert-only client with the
// defaults.
type Config struct {
	// Workers registers the task kinds this process works. Nil makes an
	// insert-only client: it enqueues tasks for the processes that work
	// them, and Start fails.
	Workers *river.Workers
	// Queues are the queues this process works, with how many tasks of
	// each run at a time. Default, when Workers is set: river.QueueDefault
	// with DefaultMaxWorkers workers.
	Queues map[string]river.QueueConfig
	// Logger receives River's logs. Default: slog.Default().
	Logger *slog.Logger
	// PeriodicJobs are tasks enqueued on a schedule. Only the elected
	// leader among the processes sharing the database enqueues them, so
	// each period runs once.
	PeriodicJobs []*river.PeriodicJob
	// RetryPolicy decides when a failed task runs again. Default: River's
	// exponential backoff (attempt^4 seconds). A Worker's NextRetry method
	// overrides it for its kind.
	RetryPolicy river.ClientRetryPolicy
	// MaxAttempts is how many times a task runs before it is discarded.
	// Default: River's, 25. river.InsertOpts.MaxAttempts overrides it per
	// task.
	MaxAttempts int
	// JobTimeout bounds one attempt of a task; -1 means no limit. Default:
	// River's, one minute.
	JobTimeout time.Duration
	// ErrorHandler is told about tasks that fail or panic.
	ErrorHandler river.ErrorHandler
	// River is the starting point for the River settings this Config does
	// not name (hooks, middleware, poll intervals, retention of finished
	// tasks, ...). The fields above, when set, take precedence. Its Schema
	// must be empty: the client always uses the store's. Nil means River's
	// defaults.
	River *river.Config
}

// riverConfig returns the River configuration for a client on schema. It
// reports this package's rules; River validates the rest in NewClient.
func (c *Config) riverConfig(schema string) (*river.Config, error) {
	in := Config{}
	if c != nil {
		in = *c
	}
	out := river.Config{}
	if in.River != nil {
		out = *in.River
	}
	var errs []error
	if out.Schema != "" {
		errs = append(errs, errors.New("tasks: Config.River.Schema must be empty: tasks live in the store's schema"))
	}
	out.Schema = schema
	if in.Workers != nil {
		out.Workers = in.Workers
	}
	if in.Queues != nil {
		out.Queues = in.Queues
	}
	if out.Workers != nil && len(out.Queues) == 0 {
		out.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: DefaultMaxWorkers}}
	}
	if out.Workers == nil && len(out.Queues) > 0 {
		errs = append(errs, errors.New("tasks: Queues need Workers: an insert-only client works no queue"))
	}
	if in.Logger != nil {
		out.Logger = in.Logger
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if in.PeriodicJobs != nil {
		out.PeriodicJobs = in.PeriodicJobs
	}
	if in.RetryPolicy != nil {
		out.RetryPolicy = in.RetryPolicy
	}
	if in.MaxAttempts != 0 {
		out.MaxAttempts = in.MaxAttempts
	}
	if in.JobTimeout != 0 {
		out.JobTimeout = in.JobTimeout
	}
	if in.ErrorHandler != nil {
		out.ErrorHandler = in.ErrorHandler
	}
	return &out, errors.Join(errs...)
}

// Client enqueues tasks, in the caller's transaction, and works them when
// it has Workers and is started. It is safe for concurrent use.
//
// TTx is the store's transaction type: *sql.Tx on SQLite, pgx.Tx on
// PostgreSQL.
type Client[TTx any] struct {
	river  *river.Client[TTx]
	logger *slog.Logger
}

// ForSQLite returns a client whose tasks live in the SQLite store of d,
// on d's single write connection (River on SQLite wants exactly one; see
// the package documentation for what that implies). The tables must exist:
// run MigrateSQLite first.
func ForSQLite(d *sqlite.Driver, config *Config) (*Client[*sql.Tx], error) {
	if d == nil {
		return nil, errors.New("tasks: nil SQLite driver")
	}
	return newClient(riversqlite.New(d.DB()), "", config)
}

// ForPostgres returns a client whose tasks live in the PostgreSQL schema of
// the store of d, on d's pool. River holds one of the pool's connections
// to LISTEN while the client runs, and its maintenance and completion
// take a few more at times: size the pool for them. The store's schema
// must be at most 46 characters (River prefixes it to notification
// channels). The tables must exist: run MigratePostgres first.
func ForPostgres(d *postgres.Driver, config *Config) (*Client[pgx.Tx], error) {
	if d == nil {
		return nil, errors.New("tasks: nil PostgreSQL driver")
	}
	return newClient(riverpgxv5.New(d.Pool()), d.Schema(), config)
}

func newClient[TTx any](drv riverdriver.Driver[TTx], schema string, config *Config) (*Client[TTx], error) {
	rc, err := config.riverConfig(schema)
	if err != nil {
		return nil, err
	}
	rv, err := river.NewClient(drv, rc)
	if err != nil {
		return nil, fmt.Errorf("tasks: %w", err)
	}
	return &Client[TTx]{river: rv, logger: rc.Logger}, nil
}

// River returns the underlying River client, for what this package does
// not wrap: listing, cancelling and retrying jobs, pausing queues,
// subscribing to job events. On SQLite, the rule of InsertTx holds for
// every one of its methods: inside a transaction of the store, use the Tx
// variant with that transaction.
func (c *Client[TTx]) River() *river.Client[TTx] { return c.river }

// InsertTx enqueues a task in tx: the outbox. The task commits or rolls
// back with everything else tx does (the events appended with
// Store.AppendTx, say), and no worker sees it before the commit. A side
// effect that must follow a decision is enqueued this way, never done
// inline after the commit, where a crash would lose it.
//
// On SQLite, tx holds the store's only write connection until it ends:
// while it is open, any River call that does not take tx (Insert, JobGet,
// ...) waits for that connection and deadlocks the caller. Use InsertTx,
// InsertManyTx and the Tx variants of River's methods with the transaction
// you already have.
func (c *Client[TTx]) InsertTx(ctx context.Context, tx TTx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := c.river.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("tasks: insert %s: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertManyTx enqueues several tasks in tx, with the guarantees and the
// SQLite rule of InsertTx. On SQLite the rows are inserted one at a time;
// on PostgreSQL in one statement.
func (c *Client[TTx]) InsertManyTx(ctx context.Context, tx TTx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	res, err := c.river.InsertManyTx(ctx, tx, params)
	if err != nil {
		return nil, fmt.Errorf("tasks: insert %d tasks: %w", len(params), err)
	}
	return res, nil
}

// Start starts working tasks, in the background, until Stop is called or
// ctx is cancelled (which also cancels the tasks that are running). It
// fails for an insert-only client.
func (c *Client[TTx]) Start(ctx context.Context) error {
	if err := c.river.Start(ctx); err != nil {
		return fmt.Errorf("tasks: start: %w", err)
	}
	return nil
}

// Stop stops fetching tasks and waits for the running ones to finish, or
// for ctx to be done. Stop the client before closing the store's driver.
// Stopping a client that was not started does nothing.
func (c *Client[TTx]) Stop(ctx context.Context) error {
	if err := c.river.Stop(ctx); err != nil {
		return fmt.Errorf("tasks: stop: %w", err)
	}
	return nil
}
