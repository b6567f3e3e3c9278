// Package tasks runs discrete units of work — side effects a processor asks
// for, backfills, rebuilds, periodic jobs — on River
// (github.com/riverqueue/river), in the same database as the event store.
//
// # Tasks or subscription handlers
//
// The event pipeline itself (processors, projections, publishers) runs on
// subscriptions: a handler sees every event of the log in order, and its
// checkpoint commits with its effect. Use a task instead for work that is
// not "the next event of the log": a call to another system (send a mail,
// charge a card, post a webhook), a backfill from a source's API, the
// rebuild of a projection, anything on a schedule. A task is a row of its
// own with its own arguments, retries with backoff, timeout, and a place
// in River's UI; a failing task does not hold up the events behind it,
// and a retry reruns that task alone.
//
// # The outbox
//
// Client.InsertTx enqueues a task in the caller's transaction, typically
// the one in which Store.AppendTx appended the events that call for it.
// The events and the task commit together or not at all, and no worker
// sees the task before the commit. There is no window in which the events
// are stored and the side effect forgotten, or the reverse:
//
//	err := store.Driver().InTx(ctx, func(tx *sql.Tx) error {
//		if _, err := store.AppendTx(ctx, tx, "order-42", event.Exact(3), paid); err != nil {
//			return err
//		}
//		_, err := client.InsertTx(ctx, tx, SendReceiptArgs{Order: "order-42"}, nil)
//		return err
//	})
//
// A task runs at least once: a process that dies while working one
// leaves it to be rescued and run again, so workers must be idempotent
// (the usual way: derive an idempotency key from the task's arguments).
//
// # Setting up
//
// Migrate River's tables next to the store's (MigrateSQLite or
// MigratePostgres; "rawevents migrate" does both), then build a Client
// with ForSQLite or ForPostgres. A client with Workers works the queues
// of Config.Queues once started; a client without is insert-only, for
// processes that only enqueue. River's own API stays at hand through
// Client.River, and UIHandler serves River's web UI.
//
// # SQLite
//
// River's SQLite driver is marked experimental upstream. It wants exactly
// one connection, and the client uses the store's single write connection.
// The consequence: while a transaction of the store is open, it holds that
// connection, and any River call that does not take the transaction
// (Insert, JobGet, JobList, ...) waits for it for ever — a deadlock if the
// caller is the one holding the transaction. Inside a transaction, use
// InsertTx, InsertManyTx and the Tx variants of River's methods with that
// transaction. SQLite has no LISTEN/NOTIFY: River polls a table every
// 50 ms, so a task starts a few tens of milliseconds after its commit.
// River's work competes with appends for the one writer.
//
// # PostgreSQL
//
// River's tables live in the store's schema, so each store (and each test
// schema) has a queue of its own, and the client uses the store's pool.
// River keeps one of the pool's connections to LISTEN while it runs;
// size the pool for it and for River's maintenance. The schema name must
// be at most 46 characters.
//
// # Throughput
//
// Trivial tasks worked end to end by one process on a 2-core machine
// (BenchmarkWork): with the default queue (DefaultMaxWorkers), about 1,000
// a second on either backend, the ceiling set by River fetching at most
// MaxWorkers tasks every FetchCooldown (100 ms). With 500 workers, about
// 1,200 to 2,000 a second on SQLite and 3,500 to 4,500 on PostgreSQL.
// River stores completions in batches, so a task may show as completed a
// fraction of a second after its work ended.
package tasks
