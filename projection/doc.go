// Package projection keeps read models up to date from the event log and
// answers queries on them: the read side of CQRS.
//
// A Projection declares its tables (key, indexed and full-text columns)
// and a handler that writes them through a Tx. A Projector runs each
// projection on the subscription engine (catch-up then live, batches,
// partitions under leases, retries and parking) and commits a batch's
// rows with the projection's checkpoint, so a crash neither loses nor
// doubles an effect. Read models live in a read store: a second SQLite
// file beside the event store's, or a PostgreSQL database (the store's
// own or another).
//
// Queries (List, Get) filter on key and indexed columns, sort, page with
// cursors and search full text (FTS5 on SQLite, tsvector on PostgreSQL);
// what users type is never syntax to the database. WaitFor and Reflects
// give read-your-writes across the pipeline: a position that ingestion
// answered is waited for through the upstream processors, then through
// the projection.
//
// Each build of a read model is a generation with tables of its own:
// StartRebuild builds a new one from position 0 beside the live one,
// Compare previews the difference, Swap makes it live in one step, and
// DropRetired drops what a swap replaced. Package projectiontest tests a
// projection: given events, then rows.
package projection
