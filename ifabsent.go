package rawevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// maxIfAbsentAttempts bounds the retries of AppendIfAbsent when concurrent
// writers store the same ids or keys.
const maxIfAbsentAttempts = 10

// StreamEvent is an event together with the stream it goes to and, if it
// has one, the key that deduplicates it there.
type StreamEvent struct {
	StreamID string
	// Key, when not empty, is what makes the event a repeat instead of its
	// id: AppendIfAbsent stores the event only if no event of StreamID has
	// this key, and stores the key with it (event.Event.Key). Event.ID may
	// then be left zero: the store gives the event a new id (Config.NewID,
	// a UUIDv7 by default). A key is valid UTF-8 without U+0000, at most
	// MaxKeyLength bytes.
	//
	// Ingestion keys raw events by their CloudEvents id in the source's
	// stream. A key is cheaper to enforce than an id derived from the
	// sender's identity of a fact (a hash): the events' time-ordered ids
	// add to the end of the event-id index, and a source whose ids grow
	// adds to the end of its range of the key index, where a hashed id
	// would touch a random page of the index for every event.
	Key string
	// Event is the event to store.
	Event event.Proposed
}

// Outcome says where AppendIfAbsent put an event.
type Outcome struct {
	// Event is the event as stored: by this call, or earlier when Existing.
	Event event.Event
	// Existing reports that an event with this key in the stream (for an
	// event with a key) or with this id (for one without) was already
	// stored, so this one was not written.
	Existing bool
}

// AppendIfAbsent appends, in one transaction, those events that are not
// stored yet, each to the end of its stream; an event already stored is
// not written, whatever its content, and its outcome is the stored event.
// An event with a Key is already stored when its stream has an event with
// that key; an event without one, when its id is stored. It is the write
// of ingestion and backfills, where the key (or the id) comes from the
// sender's identity of a fact, so that a second delivery stores nothing
// and answers with the first one's position.
//
// Every event needs a key or an id. An event with a key and an id of its
// own whose id is stored as another event fails the call with an
// *event.EventIDReusedError. The call is all or nothing: one invalid
// event fails it with an *event.ValidationError and nothing is stored.
func (s *Store[TTx]) AppendIfAbsent(ctx context.Context, events []StreamEvent) ([]Outcome, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	p, err := s.PrepareIfAbsent(events)
	if err != nil {
		return nil, err
	}
	return s.AppendPrepared(ctx, p)
}

// Prepared are the events of an AppendIfAbsent, checked and completed
// (ids, record time) by PrepareIfAbsent ahead of the AppendPrepared that
// stores them.
type Prepared struct {
	events []pendingEvent
}

// Len returns how many events p holds.
func (p *Prepared) Len() int { return len(p.events) }

// PrepareIfAbsent checks events as AppendIfAbsent does and completes them
// (ids, times, their metadata encoded as stored), without storing
// anything: an invalid event fails it with an *event.ValidationError. A
// writer that gathers many callers' events into one transaction (group
// commit) prepares each caller's events on the caller's goroutine, so that
// its one transaction does not wait for the checks and the encoding, and
// a caller's bad event fails that caller alone. The events are recorded at
// the time of this call.
func (s *Store[TTx]) PrepareIfAbsent(events []StreamEvent) (*Prepared, error) {
	pending, err := s.prepareIfAbsent(events)
	if err != nil {
		return nil, err
	}
	return &Prepared{events: pending}, nil
}

// AppendPrepared is AppendIfAbsent of the prepared batches together, in
// one transaction, one Outcome per event in order. Two batches may hold
// the same event: it is stored once. Two batches that give one id to
// different events fail it with an *event.EventIDReusedError, and nothing
// is stored.
func (s *Store[TTx]) AppendPrepared(ctx context.Context, batches ...*Prepared) ([]Outcome, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	var prepared []pendingEvent
	switch len(batches) {
	case 0:
		return []Outcome{}, nil
	case 1:
		prepared = batches[0].events
	default:
		owners := idOwners{}
		for _, b := range batches {
			for _, p := range b.events {
				if p.givenID && !owners.claim(p.ID, p.identity()) {
					return nil, &event.EventIDReusedError{ID: p.ID}
				}
			}
			prepared = append(prepared, b.events...)
		}
	}
	var (
		out []Outcome
		err error
	)
	for attempt := 1; ; attempt++ {
		err = s.driver.InTx(ctx, func(tx TTx) error {
			out, err = s.appendIfAbsent(ctx, tx, prepared)
			return err
		})
		// Another writer may store one of the ids or keys between the
		// lookup and the insert. Its commit is what ended the wait on the
		// unique index, so the next attempt finds that event stored: every
		// attempt settles at least one event. An id found taken by the
		// lookup is settled already and not tried again.
		var taken *takenError
		if err == nil || attempt == maxIfAbsentAttempts || !errors.Is(err, event.ErrEventIDReused) || errors.As(err, &taken) {
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
// one of the ids or keys at the same moment fails it with
// event.ErrEventIDReused; roll back and try again.
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

// takenError is an event id that the lookup found stored as another event:
// a mistake of the caller's, which no retry settles.
type takenError struct {
	err *event.EventIDReusedError
}

func (e *takenError) Error() string { return e.err.Error() }
func (e *takenError) Unwrap() error { return e.err }

// identity is what makes two events of an AppendIfAbsent the same: their
// stream and key when they have a key, their id when not.
type identity struct {
	key event.StreamKey
	id  uuid.UUID
}

func identityOf(streamID, key string, id uuid.UUID) identity {
	if key != "" {
		return identity{key: event.StreamKey{StreamID: streamID, Key: key}}
	}
	return identity{id: id}
}

// validateStreamEvents checks the arguments of AppendIfAbsent.
func validateStreamEvents(events []StreamEvent) error {
	owners := make(idOwners, len(events))
	for i, se := range events {
		if err := validateStreamID(se.StreamID); err != nil {
			var ve *event.ValidationError
			if errors.As(err, &ve) {
				ve.Index = i
			}
			return err
		}
		if err := validateKey(i, se.Key); err != nil {
			return err
		}
		if se.Event.ID == uuid.Nil {
			if se.Key == "" {
				return &event.ValidationError{Index: i, Field: "id", Reason: "is required for an event without a key"}
			}
		} else if !owners.claim(se.Event.ID, identityOf(se.StreamID, se.Key, se.Event.ID)) {
			return &event.ValidationError{Index: i, Field: "id", Reason: "is the id of another event of the batch"}
		}
		if err := validateProposed(i, se.Event); err != nil {
			return err
		}
	}
	return nil
}

// idOwners records which event each id chosen by a caller names. One id
// cannot be stored for two different events; the same event twice is a
// repeat, stored once.
type idOwners map[uuid.UUID]identity

// claim records that id names who; false when it names another event.
func (o idOwners) claim(id uuid.UUID, who identity) bool {
	if other, ok := o[id]; ok && other != who {
		return false
	}
	o[id] = who
	return true
}

func validateKey(i int, key string) error {
	invalid := func(reason string) error {
		return &event.ValidationError{Index: i, Field: "key", Reason: reason}
	}
	switch {
	case len(key) > MaxKeyLength:
		return invalid(fmt.Sprintf("is longer than %d bytes", MaxKeyLength))
	case !utf8.ValidString(key):
		return invalid("is not valid UTF-8")
	case strings.ContainsRune(key, 0):
		return invalid("contains U+0000")
	}
	return nil
}

// pendingEvent is an event of AppendIfAbsent, complete for the driver.
type pendingEvent struct {
	event.Event
	// givenID reports that the caller chose the id (the store generates
	// the ids of keyed events that come without one).
	givenID bool
	// meta is the event's metadata as JSON, encoded when it was prepared
	// (by PrepareIfAbsent on the caller's goroutine, not in the
	// transaction that stores it).
	meta []byte
}

func (p *pendingEvent) identity() identity { return identityOf(p.StreamID, p.Key, p.ID) }

func (s *Store[TTx]) prepareIfAbsent(events []StreamEvent) ([]pendingEvent, error) {
	if err := validateStreamEvents(events); err != nil {
		return nil, err
	}
	now := s.config.Now().UTC().Truncate(time.Microsecond)
	out := make([]pendingEvent, len(events))
	for i, se := range events {
		e, err := s.complete(se.Event, now)
		if err != nil {
			return nil, err
		}
		e.StreamID, e.Key = se.StreamID, se.Key
		meta, err := json.Marshal(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("rawevents: encode metadata: %w", err)
		}
		out[i] = pendingEvent{Event: e, givenID: se.Event.ID != uuid.Nil, meta: meta}
	}
	return out, nil
}

// storedIn looks up, in tx, the events among pending that are stored
// already: by key those with a key, by id those without one and those with
// a key whose caller chose the id.
func (s *Store[TTx]) storedIn(ctx context.Context, tx TTx, pending []pendingEvent) (byKey map[event.StreamKey]event.Event, byID map[uuid.UUID]event.Event, err error) {
	var ids []uuid.UUID
	var keys []event.StreamKey
	for _, p := range pending {
		if p.Key != "" {
			keys = append(keys, event.StreamKey{StreamID: p.StreamID, Key: p.Key})
		}
		if p.Key == "" || p.givenID {
			ids = append(ids, p.ID)
		}
	}
	byKey = make(map[event.StreamKey]event.Event, len(keys))
	if len(keys) > 0 {
		stored, err := s.driver.LookupKeysTx(ctx, tx, keys)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range stored {
			byKey[event.StreamKey{StreamID: e.StreamID, Key: e.Key}] = e
		}
	}
	byID = make(map[uuid.UUID]event.Event, len(ids))
	if len(ids) > 0 {
		stored, err := s.driver.LookupTx(ctx, tx, ids)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range stored {
			byID[e.ID] = e
		}
	}
	return byKey, byID, nil
}

func (s *Store[TTx]) appendIfAbsent(ctx context.Context, tx TTx, pending []pendingEvent) ([]Outcome, error) {
	if s.driver.AppendManyTxUndone() && keyedOnly(pending) && s.appendFirst() {
		// Most keys are new: append at once, and look the keys up only
		// when the unique index finds one stored (the failed append left
		// tx as it was).
		out, err := s.appendAbsent(ctx, tx, pending, nil, nil)
		if !errors.Is(err, event.ErrEventIDReused) {
			return out, err
		}
		// Repeats come in runs (a sender delivering its backlog again),
		// and each costs a whole failed append: the next transactions
		// look their keys up first.
		s.lookFirst.Store(lookFirstAfterRepeat)
	}
	byKey, byID, err := s.storedIn(ctx, tx, pending)
	if err != nil {
		return nil, err
	}
	return s.appendAbsent(ctx, tx, pending, byKey, byID)
}

// lookFirstAfterRepeat is how many AppendIfAbsent transactions look their
// keys up first after an append found one stored.
const lookFirstAfterRepeat = 64

// appendFirst reports whether an AppendIfAbsent transaction may append
// before it looks its keys up, counting down lookFirst when not.
func (s *Store[TTx]) appendFirst() bool {
	for {
		n := s.lookFirst.Load()
		if n <= 0 {
			return true
		}
		if s.lookFirst.CompareAndSwap(n, n-1) {
			return false
		}
	}
}

// keyedOnly reports whether every event has a key and an id of the
// store's choosing, so that a stored key is the only repeat there can be.
func keyedOnly(pending []pendingEvent) bool {
	for i := range pending {
		if pending[i].Key == "" || pending[i].givenID {
			return false
		}
	}
	return true
}

// appendAbsent appends those of pending that are neither in byKey nor in
// byID (the events stored already) nor repeats of an earlier one of
// pending.
func (s *Store[TTx]) appendAbsent(ctx context.Context, tx TTx, pending []pendingEvent, byKey map[event.StreamKey]event.Event, byID map[uuid.UUID]event.Event) ([]Outcome, error) {
	out := make([]Outcome, len(pending))
	written := make([]bool, len(pending))         // whether out[i] is filled in
	first := make(map[identity]int, len(pending)) // index of an event's first occurrence
	byStream := map[string][]int{}
	for i := range pending {
		p := &pending[i]
		if p.Key != "" {
			if old, ok := byKey[event.StreamKey{StreamID: p.StreamID, Key: p.Key}]; ok {
				out[i], written[i] = Outcome{Event: old, Existing: true}, true
				continue
			}
			if _, ok := byID[p.ID]; ok { // stored, but not as this key of this stream
				return nil, &takenError{err: &event.EventIDReusedError{ID: p.ID}}
			}
		} else if old, ok := byID[p.ID]; ok {
			out[i], written[i] = Outcome{Event: old, Existing: true}, true
			continue
		}
		if _, ok := first[p.identity()]; ok {
			continue // filled in below, from its first occurrence
		}
		first[p.identity()] = i
		byStream[p.StreamID] = append(byStream[p.StreamID], i)
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
		metas := make([][]byte, len(idx))
		for j, i := range idx {
			batch[j], metas[j] = pending[i].Event, pending[i].meta
		}
		params[k] = &driver.AppendParams{StreamID: stream, Expected: event.Any, Events: batch, Metadata: metas}
	}
	results, err := s.driver.AppendManyTx(ctx, tx, params)
	if err != nil {
		return nil, err
	}
	for k, stream := range streams {
		for j, i := range byStream[stream] {
			out[i], written[i] = Outcome{Event: results[k].Events[j], Existing: results[k].Duplicate}, true
		}
	}
	for i := range pending {
		if !written[i] {
			out[i] = Outcome{Event: out[first[pending[i].identity()]].Event, Existing: true}
		}
	}
	return out, nil
}
