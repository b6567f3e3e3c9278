package rawevents

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// maxIfAbsentAttempts bounds the retries of AppendIfAbsent when concurrent
// writers store the same ids.
const maxIfAbsentAttempts = 10

// StreamEvent is an event together with the stream it goes to.
type StreamEvent struct {
	StreamID string
	Event    event.Proposed
}

// Outcome says where AppendIfAbsent put an event.
type Outcome struct {
	// Event is the event as stored: by this call, or earlier when Existing.
	Event event.Event
	// Existing reports that an event with this id was already stored, so
	// this one was not written.
	Existing bool
}

// AppendIfAbsent appends, in one transaction, those events whose ids are
// not stored yet, each to the end of its stream; an event whose id is
// already stored is not written, whatever its content, and its outcome is
// the stored event. It is the write of ingestion and backfills, where the
// id is derived from the sender's identity of a fact, so that a second
// delivery stores nothing and answers with the first one's position.
//
// Every event needs an id. The call is all or nothing: one invalid event
// fails it with an *event.ValidationError and nothing is stored.
func (s *Store[TTx]) AppendIfAbsent(ctx context.Context, events []StreamEvent) ([]Outcome, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	prepared, err := s.prepareIfAbsent(events)
	if err != nil {
		return nil, err
	}
	var out []Outcome
	for attempt := 1; ; attempt++ {
		err = s.driver.InTx(ctx, func(tx TTx) error {
			out, err = s.appendIfAbsent(ctx, tx, prepared)
			return err
		})
		// Another writer may store one of the ids between the lookup and
		// the insert. Its commit is what ended the wait on the unique
		// index, so the next attempt finds that id stored: every attempt
		// settles at least one id.
		if err == nil || attempt == maxIfAbsentAttempts || !errors.Is(err, event.ErrEventIDReused) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(rand.IntN(attempt*1000)) * time.Microsecond):
		}
	}
}

// AppendIfAbsentTx is AppendIfAbsent inside tx. A concurrent writer storing
// one of the ids at the same moment fails it with event.ErrEventIDReused;
// roll back and try again.
func (s *Store[TTx]) AppendIfAbsentTx(ctx context.Context, tx TTx, events []StreamEvent) ([]Outcome, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	prepared, err := s.prepareIfAbsent(events)
	if err != nil {
		return nil, err
	}
	return s.appendIfAbsent(ctx, tx, prepared)
}

// ValidateStreamEvents checks the arguments of AppendIfAbsent the way it
// does, without a store, so that a caller batching several requests into
// one call can reject a bad request without failing the others.
func ValidateStreamEvents(events []StreamEvent) error {
	for i, se := range events {
		if err := validateStreamID(se.StreamID); err != nil {
			var ve *event.ValidationError
			if errors.As(err, &ve) {
				ve.Index = i
			}
			return err
		}
		if se.Event.ID == uuid.Nil {
			return &event.ValidationError{Index: i, Field: "id", Reason: "is required"}
		}
		if err := validateProposed(i, se.Event); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store[TTx]) prepareIfAbsent(events []StreamEvent) ([]event.Event, error) {
	if err := ValidateStreamEvents(events); err != nil {
		return nil, err
	}
	now := s.config.Now().UTC().Truncate(time.Microsecond)
	out := make([]event.Event, len(events))
	for i, se := range events {
		e, err := s.complete(se.Event, now)
		if err != nil {
			return nil, err
		}
		e.StreamID = se.StreamID
		out[i] = e
	}
	return out, nil
}

func (s *Store[TTx]) appendIfAbsent(ctx context.Context, tx TTx, events []event.Event) ([]Outcome, error) {
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	stored, err := s.driver.LookupTx(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	existing := make(map[uuid.UUID]event.Event, len(stored))
	for _, e := range stored {
		existing[e.ID] = e
	}

	out := make([]Outcome, len(events))
	first := make(map[uuid.UUID]int, len(events)) // index of an id's first occurrence
	byStream := map[string][]int{}
	for i, e := range events {
		if old, ok := existing[e.ID]; ok {
			out[i] = Outcome{Event: old, Existing: true}
			continue
		}
		if _, ok := first[e.ID]; ok {
			continue // filled in below, from its first occurrence
		}
		first[e.ID] = i
		byStream[e.StreamID] = append(byStream[e.StreamID], i)
	}
	// Streams in a fixed order, so that concurrent calls lock their rows
	// in the same order and cannot deadlock.
	streams := make([]string, 0, len(byStream))
	for id := range byStream {
		streams = append(streams, id)
	}
	slices.Sort(streams)
	params := make([]*driver.AppendParams, len(streams))
	for k, stream := range streams {
		idx := byStream[stream]
		batch := make([]event.Event, len(idx))
		for j, i := range idx {
			batch[j] = events[i]
		}
		params[k] = &driver.AppendParams{StreamID: stream, Expected: event.Any, Events: batch}
	}
	results, err := s.driver.AppendManyTx(ctx, tx, params)
	if err != nil {
		return nil, err
	}
	for k, stream := range streams {
		for j, i := range byStream[stream] {
			out[i] = Outcome{Event: results[k].Events[j], Existing: results[k].Duplicate}
		}
	}
	for i, e := range events {
		if f := first[e.ID]; out[i].Event.ID == uuid.Nil && f != i {
			out[i] = Outcome{Event: out[f].Event, Existing: true}
		}
	}
	return out, nil
}
