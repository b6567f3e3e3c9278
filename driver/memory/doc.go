// Package memory is an event store driver that keeps everything in the
// memory of the process: for unit tests, examples and tools that need a
// store for a moment. It is not a production backend. Nothing survives the
// process, or Close, and nothing is shared with another process.
//
// It passes the conformance suite (package storetest) that the SQLite and
// PostgreSQL drivers pass, so code tested on it behaves the same on them:
// optimistic concurrency, idempotent repeats, a gap-free global log,
// subscription leases and fenced checkpoints, parked events, snapshots.
// Where it differs, it says so here:
//
//   - There is no SQL and no schema. Migrate applies nothing and reports
//     schema version 0; CheckSchema always succeeds, so rawevents.NewStore
//     works on a new Driver without migrating (migrating does no harm).
//   - Events are immutable because the driver copies them in and out: a
//     caller that changes an event it appended or read (its Data, its
//     Metadata.Extra) changes its own copy, never the stored one. There is
//     no database for anyone to run UPDATE or DELETE against.
//   - One transaction at a time, like SQLite's one write connection:
//     Begin, and every write of the driver's own (Append, InTx, Claim,
//     Release, PruneSnapshots), waits until the open transaction ends.
//     Positions are therefore given in commit order, and a rolled-back
//     transaction leaves no hole in the log.
//   - Every commit goes through the driver, so waiting readers are woken at
//     once, whoever began the transaction; PollInterval is only a safety
//     net.
//
// # Transactions
//
// A *Tx holds the driver's write lock from Begin until Commit or Rollback,
// or until the context given to Begin ends, which rolls it back as
// database/sql does. A test that leaves a transaction open therefore blocks
// the next writer until that context ends. The transaction's writes are
// kept aside: reads through it (ReadStreamTx, LookupTx, LatestSnapshotTx)
// see them, every other reader sees only what is committed, Commit applies
// them all at once and Rollback drops them.
//
//	d, err := memory.New(nil)
//	store, err := rawevents.NewStore(ctx, d, nil)
//	tx, err := d.Begin(ctx)
//	_, err = store.AppendTx(ctx, tx, "order-42", event.NoStream, event.Proposed{Type: "order.placed"})
//	err = tx.Commit()
//
// Package rawtest's Memory gives a test such a store, closed when the test
// ends.
package memory
