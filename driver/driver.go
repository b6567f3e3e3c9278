// Package driver defines the interface between rawevents and a database.
//
// A driver stores events and reads them back; everything a backend does not
// need to know (validation, id generation, defaults, following the log)
// lives in the root package. Each backend lives in a sub-package (sqlite,
// postgres) and passes the conformance suite in package storetest.
//
// TTx is the backend's transaction type (*sql.Tx for SQLite, pgx.Tx for
// PostgreSQL): AppendTx writes events inside a transaction the caller owns,
// so events, read-model rows, checkpoints and jobs can commit together.
package driver

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/event"
)

// Driver is a database backend for the event store. Inputs are validated
// and defaulted by the caller; a driver translates its database's errors to
// the sentinels of package event exactly once, at this boundary.
type Driver[TTx any] interface {
	// Append writes events to one stream in a transaction of its own.
	Append(ctx context.Context, params *AppendParams) (*event.AppendResult, error)
	// AppendTx writes events inside tx. The events are visible to readers
	// once the caller commits tx; after an error the caller must roll tx
	// back.
	AppendTx(ctx context.Context, tx TTx, params *AppendParams) (*event.AppendResult, error)
	// AppendManyTx is AppendTx for several streams at once, in order, in
	// as few round trips as the database allows. It is meant for callers
	// that looked the ids and keys up in tx first, or that look them up
	// after it failed (see AppendManyTxUndone): an id already stored,
	// or a key already stored in its stream (see event.Event.Key), fails
	// the call with event.ErrEventIDReused instead of being recognised as
	// a repeat. It is the only append that stores keys; the events given
	// to Append and AppendTx have none.
	AppendManyTx(ctx context.Context, tx TTx, params []*AppendParams) ([]*event.AppendResult, error)
	// AppendManyTxUndone reports whether an AppendManyTx that failed with
	// event.ErrEventIDReused (an id or a key stored already) left tx as it
	// was before the call, and usable. Then AppendIfAbsent appends
	// events with keys before it looks the keys up, and looks them up only
	// when the append finds one stored: a repeat costs a failed append,
	// and a transaction in which nothing repeats does no lookup. Where a
	// failed statement ends the transaction (PostgreSQL), it reports
	// false and the keys are looked up first.
	AppendManyTxUndone() bool
	// InTx runs fn in a transaction of the driver's own and commits it if
	// fn returns nil (rolls it back otherwise). Readers waiting in this
	// process are woken after the commit.
	InTx(ctx context.Context, fn func(tx TTx) error) error
	// LookupTx returns the stored events among ids, in no particular order,
	// reading inside tx.
	LookupTx(ctx context.Context, tx TTx, ids []uuid.UUID) ([]event.Event, error)
	// Lookup returns the stored events among ids, in no particular order.
	Lookup(ctx context.Context, ids []uuid.UUID) ([]event.Event, error)
	// LookupKeysTx returns the stored events that have one of keys in
	// their stream, in no particular order, reading inside tx.
	LookupKeysTx(ctx context.Context, tx TTx, keys []event.StreamKey) ([]event.Event, error)
	// LookupKeys returns the stored events that have one of keys in their
	// stream, in no particular order.
	LookupKeys(ctx context.Context, keys []event.StreamKey) ([]event.Event, error)
	// ReadStream reads one stream's events.
	ReadStream(ctx context.Context, params *ReadStreamParams) ([]event.Event, error)
	// ReadStreamTx reads one stream's events inside tx, seeing what tx
	// appended before it commits.
	ReadStreamTx(ctx context.Context, tx TTx, params *ReadStreamParams) ([]event.Event, error)
	// ReadAll reads the global log in position order. It never returns an
	// event while an earlier position may still be committed (invariant 5:
	// no skipped events).
	ReadAll(ctx context.Context, params *ReadAllParams) ([]event.Event, error)
	// Head returns the position of the last committed event of the log,
	// 0 when it is empty.
	Head(ctx context.Context) (int64, error)
	// StreamInfo describes a stream, or returns event.ErrStreamNotFound.
	StreamInfo(ctx context.Context, streamID string) (*event.StreamInfo, error)
	// Changed returns a channel that is closed when events may have been
	// committed after the call. A reader that found nothing new waits on it
	// instead of polling blindly.
	Changed(ctx context.Context) <-chan struct{}
	// PollInterval is how long a waiting reader may sleep without a
	// notification before it looks again: changes the driver cannot signal
	// (another process's transaction, say) are seen within it.
	PollInterval() time.Duration
	// Migrate applies the schema migrations the database lacks.
	Migrate(ctx context.Context) (*MigrateResult, error)
	// CheckSchema returns an *event.SchemaError unless the database is at
	// exactly the schema version this driver knows.
	CheckSchema(ctx context.Context) error
	// SupportsListenNotify reports whether Changed is fed by the database
	// itself, across processes, rather than only by appends of this
	// process.
	SupportsListenNotify() bool
	// Close releases what the driver opened. Pools handed to the driver by
	// the caller stay open.
	Close() error

	Subscriptions[TTx]
	Snapshots[TTx]
}

// AppendParams are the arguments of an append.
type AppendParams struct {
	StreamID string
	Expected event.ExpectedVersion
	// Events are complete: ids, schema versions, occurred-at and
	// recorded-at are set, data is valid JSON. Positions and versions are
	// assigned by the driver.
	Events []event.Event
	// Metadata, when set, holds each event's Metadata as JSON, encoded by
	// the caller before the transaction (ingestion does it on the
	// request's goroutine, so that the one committing transaction does not
	// spend its time on it). Nil leaves the encoding to the driver; see
	// EncodedMetadata.
	Metadata [][]byte
}

// EncodedMetadata returns Events[i].Metadata as the JSON to store: the
// caller's encoding when it gave one, or encoding/json's.
func (p *AppendParams) EncodedMetadata(i int) ([]byte, error) {
	if p.Metadata != nil {
		return p.Metadata[i], nil
	}
	return json.Marshal(p.Events[i].Metadata)
}

// ReadStreamParams select events of one stream.
type ReadStreamParams struct {
	StreamID string
	// From is the first stream version to return, inclusive. Reading
	// backwards, 0 means from the end.
	From int64
	// Backwards reads from From towards version 1.
	Backwards bool
	// Limit is the maximum number of events to return; it is > 0.
	Limit int
}

// ReadAllParams select a page of the global log.
type ReadAllParams struct {
	// After is the position to read after (0 reads from the start).
	After int64
	// Limit is the maximum number of events to return; it is > 0.
	Limit int
}

// MigrateResult says what Migrate did.
type MigrateResult struct {
	// Applied lists the versions applied by this call, in order.
	Applied []int `json:"applied"`
	// Version is the schema version after the call.
	Version int `json:"version"`
}
