// Package rawevents is an event store for Go in which every fact is kept as
// an immutable event and every answer is derived from events.
//
// A Store appends events to streams with optimistic concurrency, reads
// streams forwards and backwards, reads the global log in pages, and follows
// it as it grows. It runs on a driver: driver/sqlite (embedded, one file,
// the default), driver/postgres (pgx v5), or driver/memory (for tests).
// All pass the same conformance suite (package storetest).
//
// Guarantees, on every driver:
//
//   - An acknowledged append is durable: SQLite runs with synchronous=FULL,
//     PostgreSQL with synchronous commit.
//   - Events are immutable; the database itself rejects UPDATE and DELETE.
//   - An append with the wrong expected version fails with an
//     *event.ConcurrencyError and stores nothing.
//   - Re-appending the same event ids with the same content is idempotent.
//   - Readers of the global log never skip an event: positions are
//     returned in order and a position is only passed once nothing below it
//     can still commit.
//
// AppendIfAbsent is the write of ingestion and backfills: events keyed by
// the sender's identity of a fact (StreamEvent.Key, unique in its stream),
// or whose ids are derived from it, are stored once, and a second delivery
// answers with the first one's event; LookupKeys finds an event by its
// key. Package ingest builds raw CloudEvents ingestion, with group commit,
// on it: a raw event's key is its CloudEvents id.
//
// A Subscription is a handler of the global log run by a Subscriber: it
// reads from its checkpoint, hands events to the handler in batches, and
// commits each batch's writes together with the checkpoint, so every event
// takes effect exactly once. Work splits into partitions by a key (same key,
// log order; different keys, in parallel), held by processes under leases
// that others take over when a process dies. A failing event is retried
// with backoff and then parked for an operator (Parked, RetryParked,
// SkipParked), unless the subscription is strict. Processors (package
// domain) and projections run on it; package tasks runs discrete work on
// River, enqueued in the same transactions.
//
// The usual shape of a program:
//
//	d, err := sqlite.Open("app.db", nil)     // or postgres.Open(ctx, url, nil)
//	_, err = d.Migrate(ctx)                  // once, at start
//	store, err := rawevents.NewStore(ctx, d, nil)
//	res, err := store.Append(ctx, "order-42", event.NoStream,
//		event.Proposed{Type: "order.placed", Data: []byte(`{"total":12}`)})
//	for e, err := range store.Follow(ctx, nil) { ... }
package rawevents
