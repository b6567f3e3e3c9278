// Package event holds the core types of rawevents: the recorded event, its
// metadata, the expected-version rule of an append, and the sentinel errors
// every backend maps its failures to.
//
// It imports nothing else of rawevents, so drivers, the root package and
// tools can all share it without import cycles.
package event

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event is an event as the store recorded it. Events are immutable: once
// appended, no field of a stored event ever changes.
type Event struct {
	// ID identifies the event across the whole store. It is chosen by the
	// writer (a UUIDv7 by default), which is what makes appends idempotent.
	ID uuid.UUID `json:"id"`
	// StreamID names the stream the event belongs to.
	StreamID string `json:"stream_id"`
	// Key, when not empty, is the event's deduplication key: no other
	// event of its stream has it. Only events appended with a key have
	// one (see rawevents.StreamEvent): a raw event's key is its
	// CloudEvents id, unique per source as the CloudEvents spec makes it.
	Key string `json:"key,omitempty"`
	// StreamVersion is the event's 1-based place in its stream.
	StreamVersion int64 `json:"stream_version"`
	// Position is the event's 1-based place in the global log. Positions
	// increase in the order readers see events; they may have holes (a
	// rolled-back append leaves one), but a reader never passes a position
	// that may still be filled.
	Position int64 `json:"position"`
	// Type is the event's name, chosen by the application ("order.placed").
	Type string `json:"type"`
	// SchemaVersion is the version of Type's payload schema, 1 by default.
	SchemaVersion int `json:"schema_version"`
	// Data is the payload: JSON, kept byte for byte as it was appended.
	Data json.RawMessage `json:"data"`
	// Metadata says where the event came from and why it was written.
	Metadata Metadata `json:"metadata"`
	// OccurredAt is when the fact happened in the world (event time).
	OccurredAt time.Time `json:"occurred_at"`
	// RecordedAt is when the store accepted it (store time).
	RecordedAt time.Time `json:"recorded_at"`
}

// Metadata is the audit trail of an event: who and what caused it, and the
// raw event it was derived from.
type Metadata struct {
	// CorrelationID ties together every event of one business flow.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the id of the event or command that directly caused
	// this one.
	CausationID string `json:"causation_id,omitempty"`
	// Actor is the user or service on whose behalf the event was written.
	Actor string `json:"actor,omitempty"`
	// TraceParent and TraceState carry the W3C trace context of the write.
	TraceParent string `json:"traceparent,omitempty"`
	// TraceState is the W3C tracestate header that goes with TraceParent.
	TraceState string `json:"tracestate,omitempty"`
	// Origin points at the raw event this event was derived from, if any.
	Origin *Origin `json:"origin,omitempty"`
	// Extra holds free-form application metadata.
	Extra map[string]string `json:"extra,omitempty"`
}

// Origin identifies a raw event: the (source, id) pair it arrived with and
// its position in the log.
type Origin struct {
	Source   string `json:"source"`
	ID       string `json:"id"`
	Position int64  `json:"position,omitempty"`
}

// StreamKey names an event by its stream and its deduplication key (see
// Event.Key).
type StreamKey struct {
	StreamID string `json:"stream_id"`
	Key      string `json:"key"`
}

// Proposed is an event to append. Only Type is required.
type Proposed struct {
	// ID is the event's id; the zero UUID means "generate a UUIDv7". Set it
	// yourself to make retries of the same append idempotent.
	ID uuid.UUID
	// Type is the event's name. Required.
	Type string
	// SchemaVersion of the payload; 0 means 1.
	SchemaVersion int
	// Data is the JSON payload, stored exactly as given. Empty means JSON
	// null.
	Data json.RawMessage
	// Metadata is stored with the event.
	Metadata Metadata
	// OccurredAt is the event time; the zero time means "when recorded".
	OccurredAt time.Time
}

// StreamInfo describes a stream.
type StreamInfo struct {
	StreamID string `json:"stream_id"`
	// Version is the stream version of the stream's last event.
	Version int64 `json:"version"`
	// LastPosition is the global position of the stream's last event.
	LastPosition int64     `json:"last_position"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// AppendResult is what an append wrote, or, for an idempotent repeat, what
// the original append wrote.
type AppendResult struct {
	StreamID string `json:"stream_id"`
	// Version is the stream's version after the append: the version to
	// expect next time.
	Version int64 `json:"version"`
	// Events are the appended events as stored, with versions and positions.
	Events []Event `json:"events"`
	// Duplicate reports that every event had been appended before with the
	// same content, so nothing new was written.
	Duplicate bool `json:"duplicate,omitempty"`
}

// LastPosition returns the global position of the last appended event, or 0
// for an empty append.
func (r *AppendResult) LastPosition() int64 {
	if len(r.Events) == 0 {
		return 0
	}
	return r.Events[len(r.Events)-1].Position
}
