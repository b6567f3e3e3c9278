package rawevents

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// Limits on what an append accepts. They keep identifiers indexable on
// every backend and make a mistaken argument fail loudly.
const (
	// MaxStreamIDLength is the longest stream id, in bytes.
	MaxStreamIDLength = 255
	// MaxTypeLength is the longest event type, in bytes.
	MaxTypeLength = 255
	// MaxKeyLength is the longest deduplication key (StreamEvent.Key), in
	// bytes: the key is indexed with its stream id, and PostgreSQL refuses
	// index entries much longer than 2 KB.
	MaxKeyLength = 1024
	// MaxPageSize is the largest page a single read returns.
	MaxPageSize = 10_000
)

// DefaultPageSize is the page size of reads that do not set a limit.
const DefaultPageSize = 1_000

// Config configures a Store. The zero value (or nil) is a good default.
type Config struct {
	// Now is the store's clock, used for recorded-at and for events without
	// an occurred-at. Default: time.Now.
	Now func() time.Time
	// NewID generates event ids for events that come without one.
	// Default: UUIDv7, so ids sort by creation time.
	NewID func() (uuid.UUID, error)
}

func (c *Config) withDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.NewID == nil {
		out.NewID = uuid.NewV7
	}
	return &out
}

// Store is the event store: append events to streams with optimistic
// concurrency, read streams and the global log, and follow the log as it
// grows. It is safe for concurrent use.
//
// TTx is the driver's transaction type; AppendTx takes one so that events
// commit together with whatever else the caller writes in it.
type Store[TTx any] struct {
	driver driver.Driver[TTx]
	config *Config
	closed atomic.Bool
	// lookFirst counts down the AppendIfAbsent transactions that look
	// their keys up before they append, after an append found a key
	// stored (see appendIfAbsent).
	lookFirst atomic.Int32
}

// NewStore returns a Store on d. It does not migrate the database: call
// Migrate (or run "rawevents migrate") first; NewStore checks the schema and
// fails with an *event.SchemaError when it does not match.
func NewStore[TTx any](ctx context.Context, d driver.Driver[TTx], config *Config) (*Store[TTx], error) {
	if err := d.CheckSchema(ctx); err != nil {
		return nil, err
	}
	return &Store[TTx]{driver: d, config: config.withDefaults()}, nil
}

// Driver returns the store's driver.
func (s *Store[TTx]) Driver() driver.Driver[TTx] { return s.driver }

// Append appends events to a stream, atomically: either all are stored or
// none. expected is the stream version the caller's decision was based on;
// if the stream is elsewhere the append fails with an *event.ConcurrencyError
// and stores nothing.
//
// Appending events whose ids were already appended, with the same content,
// stores nothing and returns the original result with Duplicate set. A used
// id with different content fails with event.ErrEventIDReused.
//
// Appending no events stores nothing but still checks expected.
func (s *Store[TTx]) Append(ctx context.Context, streamID string, expected event.ExpectedVersion, events ...event.Proposed) (*event.AppendResult, error) {
	params, err := s.appendParams(ctx, streamID, expected, events)
	if err != nil {
		return nil, err
	}
	return s.driver.Append(ctx, params)
}

// AppendTx is Append inside tx. The events become visible when the caller
// commits tx; after an error, tx must be rolled back.
func (s *Store[TTx]) AppendTx(ctx context.Context, tx TTx, streamID string, expected event.ExpectedVersion, events ...event.Proposed) (*event.AppendResult, error) {
	params, err := s.appendParams(ctx, streamID, expected, events)
	if err != nil {
		return nil, err
	}
	return s.driver.AppendTx(ctx, tx, params)
}

func (s *Store[TTx]) appendParams(ctx context.Context, streamID string, expected event.ExpectedVersion, proposed []event.Proposed) (*driver.AppendParams, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	if err := Validate(streamID, expected, proposed...); err != nil {
		return nil, err
	}
	now := s.config.Now().UTC().Truncate(time.Microsecond)
	events := make([]event.Event, len(proposed))
	for i, p := range proposed {
		e, err := s.complete(p, now)
		if err != nil {
			return nil, err
		}
		e.StreamID = streamID
		events[i] = e
	}
	return &driver.AppendParams{StreamID: streamID, Expected: expected, Events: events}, nil
}

// Validate checks an append's arguments the way Append does, without a
// store: a tool can reject bad input before it opens anything. It returns
// an *event.ValidationError for the first problem found.
func Validate(streamID string, expected event.ExpectedVersion, events ...event.Proposed) error {
	if err := validateStreamID(streamID); err != nil {
		return err
	}
	if !expected.Valid() {
		return &event.ValidationError{Index: -1, Field: "expected_version", Reason: fmt.Sprintf("%d is not a version or a rule", expected)}
	}
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i, p := range events {
		if err := validateProposed(i, p); err != nil {
			return err
		}
		if p.ID == uuid.Nil {
			continue
		}
		if _, dup := seen[p.ID]; dup {
			return &event.ValidationError{Index: i, Field: "id", Reason: "appears twice in the batch"}
		}
		seen[p.ID] = struct{}{}
	}
	return nil
}

func validateProposed(i int, p event.Proposed) error {
	invalid := func(field, reason string) error {
		return &event.ValidationError{Index: i, Field: field, Reason: reason}
	}
	switch {
	case p.Type == "":
		return invalid("type", "is empty")
	case len(p.Type) > MaxTypeLength:
		return invalid("type", fmt.Sprintf("is longer than %d bytes", MaxTypeLength))
	case !utf8.ValidString(p.Type):
		return invalid("type", "is not valid UTF-8")
	case p.SchemaVersion < 0:
		return invalid("schema_version", "is negative")
	case len(p.Data) > 0 && (!json.Valid(p.Data) || !utf8.Valid(p.Data)):
		return invalid("data", "is not valid JSON")
	case strings.ContainsRune(p.Type, 0):
		return invalid("type", "contains U+0000")
	}
	if field := metadataWithNUL(p.Metadata); field != "" {
		return invalid("metadata."+field, "contains U+0000 or invalid UTF-8")
	}
	return nil
}

// metadataWithNUL names a metadata field that holds U+0000 or invalid
// UTF-8, which not every backend can store, or returns "". With several,
// it names the first in the order of event.Metadata (extra keys in
// sorted order).
func metadataWithNUL(m event.Metadata) string {
	bad := func(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }
	for _, f := range [...]struct{ name, value string }{
		{"correlation_id", m.CorrelationID}, {"causation_id", m.CausationID}, {"actor", m.Actor},
		{"traceparent", m.TraceParent}, {"tracestate", m.TraceState},
	} {
		if bad(f.value) {
			return f.name
		}
	}
	if m.Origin != nil {
		if bad(m.Origin.Source) {
			return "origin.source"
		}
		if bad(m.Origin.ID) {
			return "origin.id"
		}
	}
	badValue := ""
	for k, v := range m.Extra {
		if bad(k) {
			return "extra"
		}
		if bad(v) && (badValue == "" || k < badValue) {
			badValue = k
		}
	}
	if badValue != "" {
		return "extra." + badValue
	}
	return ""
}

// complete fills in what a valid proposed event leaves to the store.
func (s *Store[TTx]) complete(p event.Proposed, now time.Time) (event.Event, error) {
	data := p.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	id := p.ID
	if id == uuid.Nil {
		var err error
		if id, err = s.config.NewID(); err != nil {
			return event.Event{}, fmt.Errorf("generate event id: %w", err)
		}
	}
	schemaVersion := p.SchemaVersion
	if schemaVersion == 0 {
		schemaVersion = 1
	}
	meta := p.Metadata
	if len(meta.Extra) == 0 {
		meta.Extra = nil // stored and read back the same way as an empty map
	}
	occurred := p.OccurredAt
	if occurred.IsZero() {
		occurred = now
	}
	return event.Event{
		ID:            id,
		Type:          p.Type,
		SchemaVersion: schemaVersion,
		Data:          data,
		Metadata:      meta,
		OccurredAt:    occurred.UTC().Truncate(time.Microsecond),
		RecordedAt:    now,
	}, nil
}

func validateStreamID(id string) error {
	invalid := func(reason string) error {
		return &event.ValidationError{Index: -1, Field: "stream_id", Reason: reason}
	}
	switch {
	case id == "":
		return invalid("is empty")
	case len(id) > MaxStreamIDLength:
		return invalid(fmt.Sprintf("is longer than %d bytes", MaxStreamIDLength))
	case !utf8.ValidString(id):
		return invalid("is not valid UTF-8")
	case strings.ContainsRune(id, 0):
		return invalid("contains U+0000")
	}
	return nil
}

// ReadStreamOpts select the events ReadStream returns. Nil reads forwards
// from version 1, one default page.
type ReadStreamOpts struct {
	// From is the first version to return, inclusive. Forwards, 0 means 1;
	// backwards, 0 means the last version.
	From int64
	// Backwards returns events from From down towards version 1.
	Backwards bool
	// Limit is the page size; 0 means DefaultPageSize.
	Limit int
}

// ReadStream reads a stream's events in version order (or reverse order).
// A stream with no events reads as empty, not as an error.
func (s *Store[TTx]) ReadStream(ctx context.Context, streamID string, opts *ReadStreamOpts) ([]event.Event, error) {
	params, err := s.readStreamParams(ctx, streamID, opts)
	if err != nil {
		return nil, err
	}
	return s.driver.ReadStream(ctx, params)
}

// ReadStreamTx is ReadStream inside tx: it sees what tx appended.
func (s *Store[TTx]) ReadStreamTx(ctx context.Context, tx TTx, streamID string, opts *ReadStreamOpts) ([]event.Event, error) {
	params, err := s.readStreamParams(ctx, streamID, opts)
	if err != nil {
		return nil, err
	}
	return s.driver.ReadStreamTx(ctx, tx, params)
}

func (s *Store[TTx]) readStreamParams(ctx context.Context, streamID string, opts *ReadStreamOpts) (*driver.ReadStreamParams, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	if err := validateStreamID(streamID); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &ReadStreamOpts{}
	}
	limit, err := pageSize(opts.Limit)
	if err != nil {
		return nil, err
	}
	if opts.From < 0 {
		return nil, &event.ValidationError{Index: -1, Field: "from", Reason: "is negative"}
	}
	from := opts.From
	if from == 0 && !opts.Backwards {
		from = 1
	}
	return &driver.ReadStreamParams{StreamID: streamID, From: from, Backwards: opts.Backwards, Limit: limit}, nil
}

// ReadAllOpts select a page of the global log. Nil reads the first default
// page.
type ReadAllOpts struct {
	// After is the position to read after; 0 reads from the start.
	After int64
	// Limit is the page size; 0 means DefaultPageSize.
	Limit int
}

// ReadAll reads a page of the global log in position order. Reading again
// after the last returned position gives the next page; a short or empty
// page means the reader has caught up with what is committed.
func (s *Store[TTx]) ReadAll(ctx context.Context, opts *ReadAllOpts) ([]event.Event, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &ReadAllOpts{}
	}
	limit, err := pageSize(opts.Limit)
	if err != nil {
		return nil, err
	}
	if opts.After < 0 {
		return nil, &event.ValidationError{Index: -1, Field: "after", Reason: "is negative"}
	}
	return s.driver.ReadAll(ctx, &driver.ReadAllParams{After: opts.After, Limit: limit})
}

// Lookup returns the stored events among ids, in no particular order; ids
// not stored are left out.
func (s *Store[TTx]) Lookup(ctx context.Context, ids ...uuid.UUID) ([]event.Event, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	return s.driver.Lookup(ctx, ids)
}

// LookupKeys returns the stored events that have one of keys in their
// stream (see StreamEvent.Key), in no particular order; keys not stored
// are left out. It is how a raw event is found by its source and
// CloudEvents id.
func (s *Store[TTx]) LookupKeys(ctx context.Context, keys ...event.StreamKey) ([]event.Event, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	keys = slices.DeleteFunc(slices.Clone(keys), func(k event.StreamKey) bool { return k.Key == "" })
	if len(keys) == 0 {
		return nil, nil
	}
	return s.driver.LookupKeys(ctx, keys)
}

// StreamInfo describes a stream, or fails with event.ErrStreamNotFound.
func (s *Store[TTx]) StreamInfo(ctx context.Context, streamID string) (*event.StreamInfo, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	if err := validateStreamID(streamID); err != nil {
		return nil, err
	}
	return s.driver.StreamInfo(ctx, streamID)
}

// Head returns the position of the last committed event of the log, 0
// when it is empty.
func (s *Store[TTx]) Head(ctx context.Context) (int64, error) {
	if err := s.usable(ctx); err != nil {
		return 0, err
	}
	return s.driver.Head(ctx)
}

// Close closes the store and its driver. Later calls fail with
// event.ErrClosed; closing twice is harmless.
func (s *Store[TTx]) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.driver.Close()
}

func (s *Store[TTx]) usable(ctx context.Context) error {
	if s.closed.Load() {
		return event.ErrClosed
	}
	return ctx.Err()
}

func pageSize(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultPageSize, nil
	case limit < 0 || limit > MaxPageSize:
		return 0, &event.ValidationError{Index: -1, Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d", MaxPageSize)}
	}
	return limit, nil
}

// StreamAppend is one stream's part of AppendManyTx.
type StreamAppend struct {
	StreamID string
	Expected event.ExpectedVersion
	Events   []event.Proposed
}

// AppendManyTx appends to several streams inside tx, in as few round
// trips as the database allows, each at its own expected version. It is
// for callers that already know the ids are new (a processor that looked
// them up in tx): an id already stored fails the call with
// event.ErrEventIDReused rather than being taken as a repeat. After an
// error, tx must be rolled back.
func (s *Store[TTx]) AppendManyTx(ctx context.Context, tx TTx, appends []StreamAppend) ([]*event.AppendResult, error) {
	params := make([]*driver.AppendParams, len(appends))
	for i, a := range appends {
		p, err := s.appendParams(ctx, a.StreamID, a.Expected, a.Events)
		if err != nil {
			return nil, err
		}
		params[i] = p
	}
	if len(params) == 0 {
		return nil, nil
	}
	return s.driver.AppendManyTx(ctx, tx, params)
}
