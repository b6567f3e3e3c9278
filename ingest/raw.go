// Package ingest turns facts delivered by outside systems into raw events
// in the store: the first arrow of rawevents' flow.
//
// A raw event is a CloudEvent kept as it arrived: its attributes and
// extensions, its data byte for byte, its content type, and the transport
// facts an audit needs (how and when it was received, from where, with
// which token). It is stored as an ordinary event of the log:
//
//   - stream "raw:" + source, so a source's deliveries read in order;
//   - key (event.Event.Key) the CloudEvents id, unique in the stream, so
//     that a second delivery of the same fact stores nothing and answers
//     with the first one's position; Key(source, id) finds it with
//     Store.LookupKeys;
//   - id a UUIDv7 given by the store when it first stores the event (raw
//     events stored before the keys existed keep the UUIDv5 of EventID);
//   - data the CloudEvent in the CloudEvents JSON format: "data" holds
//     application/json payloads verbatim, "data_base64" any other payload
//     (and JSON with whitespace around it, which "data" would lose);
//   - occurred-at the CloudEvent's time attribute when it has one.
//
// An Ingester writes raw events with group commit: concurrent requests
// share one transaction, and each request is answered once its own events
// are durable.
package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// Namespace is the UUID namespace of EventID. It never changes: stored
// ids depend on it.
var Namespace = uuid.MustParse("6b1f3c1e-2a43-5d0e-9c5b-7a1e0f4d2c88")

// MaxSourceLength is the longest source accepted, in bytes, so that the
// stream id ("raw:" + source) stays within the store's limit.
const MaxSourceLength = rawevents.MaxStreamIDLength - len(streamPrefix)

const streamPrefix = "raw:"

// EventID returns the UUIDv5 under which the raw event (source, id) was
// stored before raw events were deduplicated by key (SQLite schema 3,
// PostgreSQL schema 5). Such events keep that id, and the migration gave
// them their key; raw events stored since have a UUIDv7. Find a raw event
// by Key, whichever scheme stored it.
func EventID(source, id string) uuid.UUID {
	return uuid.NewSHA1(Namespace, []byte(source+"\x00"+id))
}

// Key returns the stream and key that find the raw event (source, id)
// with Store.LookupKeys.
func Key(source, id string) event.StreamKey {
	return event.StreamKey{StreamID: StreamID(source), Key: id}
}

// StreamID returns the stream that holds a source's raw events.
func StreamID(source string) string { return streamPrefix + source }

// Transport are the facts about a delivery that an audit needs. They are
// kept in the event's metadata (Extra), never in its data.
type Transport struct {
	// Mode is how the event arrived: "structured", "binary", "batch",
	// "webhook", "backfill".
	Mode string
	// RemoteAddr is the client's address as the server saw it.
	RemoteAddr string
	// UserAgent is the client's User-Agent header.
	UserAgent string
	// ContentType is the Content-Type of the request that carried it.
	ContentType string
	// Token names the bearer token that authorised the delivery (never the
	// secret itself).
	Token string
	// RequestID identifies the HTTP request, to match server logs.
	RequestID string
	// Verified says how the delivery was authenticated beyond the token,
	// e.g. "hmac-sha256" for a signed webhook.
	Verified string
	// Backfill names the backfill that pulled the event from its source's
	// API (see package backfill); empty for deliveries.
	Backfill string
}

func (t Transport) extra() map[string]string {
	facts := [...]struct{ k, v string }{
		{"received_via", t.Mode}, {"remote_addr", t.RemoteAddr}, {"user_agent", t.UserAgent},
		{"content_type", t.ContentType}, {"token", t.Token}, {"request_id", t.RequestID}, {"verified", t.Verified},
		{"backfill", t.Backfill},
	}
	m := make(map[string]string, len(facts))
	for _, f := range facts {
		if f.v != "" {
			m[f.k] = f.v
		}
	}
	return m
}

// Raw is a CloudEvent as received, with its transport facts.
type Raw struct {
	Event     ce.Event
	Transport Transport
}

// InvalidError is a raw event that cannot be stored: which one (its index
// in the request) and why, in words a client can act on.
type InvalidError struct {
	Index  int
	Reason string
}

// Error says which event is invalid and why.
func (e *InvalidError) Error() string {
	return fmt.Sprintf("event %d: %s", e.Index, e.Reason)
}

// Check validates a CloudEvent the way ingestion requires: the spec's
// rules for version 1.0 (required id, source, specversion, type; well
// formed optional attributes), a source short enough to name a stream,
// and a JSON payload that is JSON when the content type says it is.
func Check(i int, e *ce.Event) error {
	invalid := func(format string, args ...any) error {
		return &InvalidError{Index: i, Reason: fmt.Sprintf(format, args...)}
	}
	if e.SpecVersion() != ce.CloudEventsVersionV1 {
		return invalid("specversion %q is not supported: send 1.0", e.SpecVersion())
	}
	if err := e.Validate(); err != nil {
		return invalid("%s", strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
	}
	if len(e.Source()) > MaxSourceLength {
		return invalid("source is longer than %d bytes", MaxSourceLength)
	}
	if len(e.ID()) > rawevents.MaxKeyLength {
		return invalid("id is longer than %d bytes", rawevents.MaxKeyLength)
	}
	if !utf8.ValidString(e.Source()) || !utf8.ValidString(e.ID()) || !utf8.ValidString(e.Type()) {
		return invalid("id, source and type must be valid UTF-8")
	}
	for _, a := range [...]struct{ name, v string }{{"id", e.ID()}, {"source", e.Source()}, {"type", e.Type()}, {"subject", e.Subject()}} {
		if strings.IndexByte(a.v, 0) >= 0 {
			return invalid("%s contains U+0000, which the store cannot keep", a.name)
		}
	}
	for name, v := range e.Extensions() {
		if name == "data" || name == "data_base64" {
			// A ce-data header in binary mode arrives as an extension; kept,
			// it would clash with the payload in the stored event.
			return invalid("%q is not an extension name: it is where the CloudEvents JSON format keeps the data", name)
		}
		if s, ok := v.(string); ok && strings.ContainsRune(s, 0) {
			return invalid("extension %s contains U+0000, which the store cannot keep", name)
		}
	}
	if len(e.Type()) > rawevents.MaxTypeLength {
		return invalid("type is longer than %d bytes", rawevents.MaxTypeLength)
	}
	if isJSON(e.DataContentType()) && len(e.Data()) > 0 && !json.Valid(e.Data()) {
		return invalid("data is not valid JSON, but datacontenttype %q says it is", e.DataContentType())
	}
	return nil
}

// isJSON reports whether a payload of this content type is written as
// inline JSON ("data") in the CloudEvents JSON format: none,
// "application/json" or "text/json". Other types, "+json" suffixes
// included, travel as "data_base64", byte for byte; that is also how the
// CloudEvents SDKs read them back.
func isJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mediaType == "application/json" || mediaType == "text/json"
}

// StreamEvent returns the store event of a raw event that passed Check.
func (r *Raw) StreamEvent(receivedAt time.Time) (rawevents.StreamEvent, error) {
	envelope, err := Envelope(&r.Event)
	if err != nil {
		return rawevents.StreamEvent{}, err
	}
	meta := event.Metadata{
		Origin: &event.Origin{Source: r.Event.Source(), ID: r.Event.ID()},
		Extra:  r.Transport.extra(),
	}
	if tp, ok := r.Event.Extensions()["traceparent"].(string); ok {
		meta.TraceParent = tp
	}
	if ts, ok := r.Event.Extensions()["tracestate"].(string); ok {
		meta.TraceState = ts
	}
	occurred := r.Event.Time()
	if occurred.IsZero() {
		occurred = receivedAt
	}
	// The id is left to the store (a UUIDv7): the key deduplicates.
	return rawevents.StreamEvent{
		StreamID: StreamID(r.Event.Source()),
		Key:      r.Event.ID(),
		Event: event.Proposed{
			Type:       r.Event.Type(),
			Data:       envelope,
			Metadata:   meta,
			OccurredAt: occurred,
		},
	}, nil
}

// Envelope encodes a CloudEvent in the CloudEvents JSON format, keeping
// its data bytes: a JSON payload goes into "data" verbatim, any other into
// "data_base64".
func Envelope(e *ce.Event) (json.RawMessage, error) {
	attrs := map[string]any{
		"specversion": e.SpecVersion(),
		"id":          e.ID(),
		"source":      e.Source(),
		"type":        e.Type(),
	}
	if v := e.Subject(); v != "" {
		attrs["subject"] = v
	}
	if v := e.DataContentType(); v != "" {
		attrs["datacontenttype"] = v
	}
	if v := e.DataSchema(); v != "" {
		attrs["dataschema"] = v
	}
	if t := e.Time(); !t.IsZero() {
		attrs["time"] = t.Format(time.RFC3339Nano)
	}
	maps.Copy(attrs, e.Extensions())
	data := e.Data()
	// JSON goes inline only when it starts and ends with a value: the
	// whitespace around it would not survive a reader's decoding.
	inline := isJSON(e.DataContentType()) && len(bytes.TrimSpace(data)) == len(data)
	if len(data) > 0 && !inline {
		attrs["data_base64"] = data // encoding/json writes []byte as base64
	}
	out, err := json.Marshal(attrs)
	if err != nil {
		return nil, fmt.Errorf("encode cloudevent %q from %q: %w", e.ID(), e.Source(), err)
	}
	if len(data) > 0 && inline {
		// Spliced in by hand: encoding/json would compact a RawMessage and
		// escape its HTML characters, and the payload must stay verbatim.
		out = append(append(append(out[:len(out)-1], `,"data":`...), data...), '}')
	}
	return out, nil
}

// Decode reads a stored raw event's data back into a CloudEvent.
func Decode(data []byte) (*ce.Event, error) {
	var e ce.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode raw event: %w", err)
	}
	return &e, nil
}
