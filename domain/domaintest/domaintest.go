// Package domaintest is the test kit of package domain: given, when, then
// for aggregates and processors, with no store.
//
//	domaintest.Given(account, Deposited{Amount: 50}).
//		When(withdraw(80)).
//		ThenError(t, errInsufficient)
//
//	domaintest.Process(processor, raw).Then(t, Deposit{Account: "a1", Amount: 5})
//
// A scenario encodes and decodes every event through the aggregate's
// Types, as the store would, so an unregistered or unencodable event fails
// the test rather than production.
package domaintest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
)

// Scenario is an aggregate instance with a history.
type Scenario[S any] struct {
	agg   *domain.Aggregate[S]
	given []any
}

// Given starts a scenario: an instance of agg that has had events, given
// as registered Go values.
func Given[S any](agg *domain.Aggregate[S], events ...any) *Scenario[S] {
	return &Scenario[S]{agg: agg, given: events}
}

// State returns the state the history builds, each event encoded and
// decoded through the aggregate's Types first.
func (s *Scenario[S]) State(t testing.TB) S {
	t.Helper()
	state := s.initial()
	for i, e := range s.given {
		state = s.agg.Apply(state, roundTrip(t, s.agg.Types, e, fmt.Sprintf("given event %d", i)))
	}
	return state
}

func (s *Scenario[S]) initial() S {
	if s.agg.Initial != nil {
		return s.agg.Initial()
	}
	var zero S
	return zero
}

// When decides a command against the scenario's state.
func (s *Scenario[S]) When(t testing.TB, decide domain.Decision[S]) *Outcome[S] {
	t.Helper()
	state := s.State(t)
	events, err := decide(state)
	return &Outcome[S]{s: s, state: state, events: events, err: err}
}

// Outcome is what a decision returned.
type Outcome[S any] struct {
	s      *Scenario[S]
	state  S
	events []any
	err    error
}

// Then checks that the decision returned exactly events, in order, and
// returns the state after them.
func (o *Outcome[S]) Then(t testing.TB, events ...any) S {
	t.Helper()
	if o.err != nil {
		t.Fatalf("the decision failed: %v; want events %s", o.err, describe(events))
	}
	got := make([]any, len(o.events))
	for i, e := range o.events {
		got[i] = roundTrip(t, o.s.agg.Types, e, fmt.Sprintf("decided event %d", i))
	}
	want := make([]any, len(events))
	for i, e := range events {
		want[i] = deref(e)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the decision returned %s\nwant %s", describe(got), describe(want))
	}
	state := o.state
	for _, e := range got {
		state = o.s.agg.Apply(state, e)
	}
	return state
}

// ThenError checks that the decision refused the command with an error
// matching target (errors.Is).
func (o *Outcome[S]) ThenError(t testing.TB, target error) {
	t.Helper()
	if o.err == nil {
		t.Fatalf("the decision returned %s; want error %v", describe(o.events), target)
	}
	if !errors.Is(o.err, target) {
		t.Fatalf("the decision failed with %v; want %v", o.err, target)
	}
}

// roundTrip encodes e as the store would and decodes it back.
func roundTrip(t testing.TB, types *domain.Types, e any, what string) any {
	t.Helper()
	p, err := types.Encode(e)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	v, err := types.Decode(event.Event{Type: p.Type, SchemaVersion: p.SchemaVersion, Data: p.Data})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return rv.Elem().Interface()
	}
	return v
}

func describe(events []any) string {
	if len(events) == 0 {
		return "no events"
	}
	s := ""
	for i, e := range events {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%T%+v", e, e)
	}
	return s
}

// RawEvent describes a raw event for Raw.
type RawEvent struct {
	Source string
	ID     string
	Type   string
	// Data is encoded as JSON.
	Data any
	// Time is the CloudEvents time (event time); zero means none.
	Time time.Time
	// Position is the raw event's position in the log; 0 means 1.
	Position int64
}

// Raw returns a raw event as ingestion stores it, ready to hand to a
// processor.
func Raw(t testing.TB, r RawEvent) event.Event {
	t.Helper()
	e := ce.New()
	e.SetID(r.ID)
	e.SetSource(r.Source)
	e.SetType(r.Type)
	if !r.Time.IsZero() {
		e.SetTime(r.Time)
	}
	if r.Data != nil {
		if err := e.SetData("application/json", r.Data); err != nil {
			t.Fatalf("raw event %s/%s: %v", r.Source, r.ID, err)
		}
	}
	received := time.Now().UTC().Truncate(time.Microsecond)
	se, err := (&ingest.Raw{Event: e, Transport: ingest.Transport{Mode: "structured"}}).StreamEvent(received)
	if err != nil {
		t.Fatalf("raw event %s/%s: %v", r.Source, r.ID, err)
	}
	// Ingestion leaves the id to the store, which gives a UUIDv7. Here it
	// is derived from (source, id), as raw events stored before they had
	// keys have it, so that the same raw event is the same every time.
	return event.Event{
		ID: ingest.EventID(r.Source, r.ID), StreamID: se.StreamID, Key: se.Key, StreamVersion: 1, Position: max(r.Position, 1),
		Type: se.Event.Type, SchemaVersion: 1, Data: se.Event.Data, Metadata: se.Event.Metadata,
		OccurredAt: se.Event.OccurredAt.UTC(), RecordedAt: received,
	}
}

// ProcessorOutcome is what a processor decided for a raw event.
type ProcessorOutcome struct {
	commands []domain.Command
	ignored  bool
	err      error
}

// Process hands raw to p as its subscription would: a raw event of a type
// p does not list is ignored.
func Process[TTx any](p *domain.Processor[TTx], raw event.Event) *ProcessorOutcome {
	if !slices.Contains(p.Types, raw.Type) {
		return &ProcessorOutcome{ignored: true}
	}
	cmds, err := p.Process(context.Background(), raw)
	return &ProcessorOutcome{commands: cmds, err: err}
}

// Then checks that the processor asked for exactly cmds, in order.
func (o *ProcessorOutcome) Then(t testing.TB, cmds ...domain.Command) {
	t.Helper()
	switch {
	case o.ignored:
		t.Fatalf("the processor does not handle this raw event's type; want commands %v", cmds)
	case o.err != nil:
		t.Fatalf("the processor failed: %v; want commands %v", o.err, cmds)
	}
	got := o.commands
	if got == nil {
		got = []domain.Command{}
	}
	if cmds == nil {
		cmds = []domain.Command{}
	}
	if !reflect.DeepEqual(got, cmds) {
		t.Fatalf("the processor asked for %#v\nwant %#v", got, cmds)
	}
}

// ThenIgnored checks that the processor does not handle the raw event's
// type: it is kept and counted, not processed.
func (o *ProcessorOutcome) ThenIgnored(t testing.TB) {
	t.Helper()
	if !o.ignored {
		t.Fatalf("the processor handled the raw event (commands %v, error %v); want it ignored", o.commands, o.err)
	}
}

// ThenError checks that the processor failed with an error matching
// target (errors.Is).
func (o *ProcessorOutcome) ThenError(t testing.TB, target error) {
	t.Helper()
	if o.err == nil || !errors.Is(o.err, target) {
		t.Fatalf("the processor returned %v, %v; want error %v", o.commands, o.err, target)
	}
}
