package event

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Sentinel errors. Every driver maps its database's failures to these, so
// callers compare with errors.Is whatever the backend.
var (
	// ErrConcurrency means the stream was not at the expected version.
	ErrConcurrency = errors.New("wrong expected version")
	// ErrInvalidEvent means an append was rejected before anything was
	// stored because an argument was malformed.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrEventIDReused means an event id was already used for an event with
	// different content (or only some ids of a batch were used), or that a
	// deduplication key was already stored in its stream (see Event.Key).
	ErrEventIDReused = errors.New("event id already used for different content")
	// ErrStreamNotFound means the stream has no events.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrSchemaTooNew means the database was migrated by a newer version of
	// rawevents than this one; this binary refuses to touch it.
	ErrSchemaTooNew = errors.New("database schema is newer than this rawevents")
	// ErrSchemaOutdated means the database needs migrations this binary has
	// (run "rawevents migrate" or Store.Migrate).
	ErrSchemaOutdated = errors.New("database schema needs migrating")
	// ErrLeaseLost means a subscription partition is no longer held by the
	// process that tried to commit work on it: its lease ran out and
	// another process took the partition. The work must be rolled back.
	ErrLeaseLost = errors.New("partition lease lost")
	// ErrPartitionsChanged means a subscription was started with another
	// partition count than the one its checkpoints were made with.
	ErrPartitionsChanged = errors.New("subscription partition count changed")
	// ErrSubscriptionNotFound means no subscription of that name has state.
	ErrSubscriptionNotFound = errors.New("subscription not found")
	// ErrParkedNotFound means no parked event matched (none at that
	// position, or not in a state that allows the change).
	ErrParkedNotFound = errors.New("parked event not found")
)

// ConcurrencyError says which stream refused an append and why. It matches
// ErrConcurrency with errors.Is.
type ConcurrencyError struct {
	StreamID string
	Expected ExpectedVersion
	// Actual is the stream's version when the append was refused, or -1
	// when a concurrent writer won a race and the version is not known.
	Actual int64
}

// Error describes the failure in one line.
func (e *ConcurrencyError) Error() string {
	if e.Actual < 0 {
		return fmt.Sprintf("stream %q: %v: expected %v, another writer appended first", e.StreamID, ErrConcurrency, e.Expected)
	}
	return fmt.Sprintf("stream %q: %v: expected %v, stream is at %d", e.StreamID, ErrConcurrency, e.Expected, e.Actual)
}

// Unwrap returns ErrConcurrency.
func (e *ConcurrencyError) Unwrap() error { return ErrConcurrency }

// ValidationError says which argument of an append was malformed. It
// matches ErrInvalidEvent with errors.Is.
type ValidationError struct {
	// Index is the event's index in the batch, or -1 for the stream id.
	Index int
	// Field names the field ("stream_id", "type", "data", ...).
	Field string
	// Reason says what is wrong, in a few words.
	Reason string
}

// Error describes the failure in one line.
func (e *ValidationError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%v: %s %s", ErrInvalidEvent, e.Field, e.Reason)
	}
	return fmt.Sprintf("%v: event %d: %s %s", ErrInvalidEvent, e.Index, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidEvent.
func (e *ValidationError) Unwrap() error { return ErrInvalidEvent }

// EventIDReusedError names the event id that was reused. It matches
// ErrEventIDReused with errors.Is.
type EventIDReusedError struct {
	ID uuid.UUID
}

// Error describes the failure in one line.
func (e *EventIDReusedError) Error() string {
	return fmt.Sprintf("event %s: %v", e.ID, ErrEventIDReused)
}

// Unwrap returns ErrEventIDReused.
func (e *EventIDReusedError) Unwrap() error { return ErrEventIDReused }

// SchemaError reports a schema version mismatch between a database and
// this binary. It matches ErrSchemaTooNew or ErrSchemaOutdated.
type SchemaError struct {
	// Database is the schema version found in the database.
	Database int
	// Known is the newest version this binary knows.
	Known int
}

// Error describes the failure in one line.
func (e *SchemaError) Error() string {
	if e.Database > e.Known {
		return fmt.Sprintf("%v: database is at schema version %d, this binary knows up to %d; upgrade rawevents", ErrSchemaTooNew, e.Database, e.Known)
	}
	return fmt.Sprintf("%v: database is at schema version %d, this binary needs %d; run \"rawevents migrate\"", ErrSchemaOutdated, e.Database, e.Known)
}

// Unwrap returns ErrSchemaTooNew or ErrSchemaOutdated.
func (e *SchemaError) Unwrap() error {
	if e.Database > e.Known {
		return ErrSchemaTooNew
	}
	return ErrSchemaOutdated
}
