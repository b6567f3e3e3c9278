package domain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/eventjson"
)

// Processor turns raw events into commands: it is where what the outside
// world said becomes what the system decides. It runs as a subscription
// of the raw streams (see Subscription), so raw events with the same key
// are processed in log order, each raw event's commands commit with the
// subscription's checkpoint, and a crash repeats nothing.
type Processor[TTx any] struct {
	// Name identifies the processor; its subscription is "processor:" +
	// Name. It is part of every derived event id, so it must not change.
	// Required.
	Name string
	// Version is recorded on every event the processor causes; 0 means 1.
	Version int
	// Types are the raw event types the processor handles. A raw event of
	// another type is kept, counted and logged (see Unknown), never an
	// error. Required.
	Types []string
	// Key returns a raw event's partition key. Raw events whose commands
	// go to one aggregate instance must share a key, so that they are
	// processed in order. Nil keys by source.
	Key func(raw event.Event) string
	// Process decides the commands a raw event asks for. An error is a
	// failure: the raw event is retried, then parked.
	Process func(ctx context.Context, raw event.Event) ([]Command, error)
	// Router executes the commands. Required.
	Router *Router[TTx]
	// Rejected is told about a command its aggregate refused (a domain
	// error). The raw event is still done: a refusal is a decision. Nil
	// logs it.
	Rejected func(raw event.Event, cmd Command, err error)

	mu      sync.Mutex
	unknown map[string]int64
}

// SubscriptionName returns the name of the processor's subscription.
func (p *Processor[TTx]) SubscriptionName() string { return "processor:" + p.Name }

// Subscription returns the subscription that runs the processor, with the
// engine settings of base (partitions, batch size, retries...; nil means
// defaults). Name, Filter, Key and Handle are the processor's.
func (p *Processor[TTx]) Subscription(base *rawevents.Subscription[TTx]) (*rawevents.Subscription[TTx], error) {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("processor: Name is required"))
	}
	if len(p.Types) == 0 {
		errs = append(errs, fmt.Errorf("processor %s: Types is required", p.Name))
	}
	if p.Process == nil || p.Router == nil {
		errs = append(errs, fmt.Errorf("processor %s: Process and Router are required", p.Name))
	}
	if p.Version < 0 {
		errs = append(errs, fmt.Errorf("processor %s: Version must not be negative", p.Name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sub := rawevents.Subscription[TTx]{}
	if base != nil {
		sub = *base
	}
	sub.Name = p.SubscriptionName()
	rawPrefix := ingest.StreamID("")
	sub.Filter = func(e event.Event) bool { return strings.HasPrefix(e.StreamID, rawPrefix) }
	sub.Key = p.Key
	sub.Handle = p.handle
	sub.HandleBatch = p.handleBatch
	return &sub, nil
}

func (p *Processor[TTx]) handle(ctx context.Context, tx TTx, raw event.Event) error {
	if !slices.Contains(p.Types, raw.Type) {
		p.countUnknown(raw.Type)
		return nil
	}
	cmds, err := p.Process(ctx, raw)
	if err != nil {
		return err
	}
	for j, cmd := range cmds {
		opts := &ExecuteOpts{Metadata: p.metadata(raw), IDSeed: p.seed(raw, j), OccurredAt: raw.OccurredAt}
		err := p.Router.ExecuteTx(ctx, tx, cmd, opts)
		if err := p.refused(ctx, raw, j, cmd, err); err != nil {
			return err
		}
	}
	return nil
}

// refused reports a command its aggregate refused, once the transaction
// commits (so a batch tried again reports it once), and returns any other
// error, wrapped.
func (p *Processor[TTx]) refused(ctx context.Context, raw event.Event, j int, cmd Command, err error) error {
	if err == nil {
		return nil
	}
	var rejected *RejectedError
	if !errors.As(err, &rejected) {
		return fmt.Errorf("processor %s: raw event at %d, command %d (%T): %w", p.Name, raw.Position, j, cmd, err)
	}
	p.reportRejected(ctx, raw, cmd, rejected)
	return nil
}

// reportRejected calls Rejected, or logs, once the transaction commits.
// It is a function of its own so that the raw event its closure captures
// is moved to the heap only for a refused command, not for every one.
func (p *Processor[TTx]) reportRejected(ctx context.Context, raw event.Event, cmd Command, rejected *RejectedError) {
	report := func() {
		if p.Rejected != nil {
			p.Rejected(raw, cmd, rejected)
		} else {
			slog.Info("command rejected", "processor", p.Name, "raw", raw.Position, "command", fmt.Sprintf("%T", cmd), "err", rejected.Err)
		}
	}
	if !rawevents.OnCommit(ctx, report) {
		report()
	}
}

// handleBatch is handle for a batch of raw events, in few round trips:
// one lookup of the ids the batch would derive, the instances loaded once
// each (or taken from the repositories' caches), the decisions made in
// memory in log order, and one append for every stream.
func (p *Processor[TTx]) handleBatch(ctx context.Context, tx TTx, raws []event.Event) error {
	type item struct {
		raw     event.Event
		j       int
		cmd     Command
		opts    *ExecuteOpts
		firstID uuid.UUID // of its first event: stored means processed
	}
	items := make([]item, 0, len(raws))
	firstIDs := make([]uuid.UUID, 0, len(raws))
	for _, raw := range raws {
		if !slices.Contains(p.Types, raw.Type) {
			p.countUnknown(raw.Type)
			continue
		}
		cmds, err := p.Process(ctx, raw)
		if err != nil {
			return err
		}
		for j, cmd := range cmds {
			opts := &ExecuteOpts{Metadata: p.metadata(raw), IDSeed: p.seed(raw, j), OccurredAt: raw.OccurredAt}
			first := DeriveID(opts.IDSeed, 0)
			items = append(items, item{raw: raw, j: j, cmd: cmd, opts: opts, firstID: first})
			firstIDs = append(firstIDs, first)
		}
	}
	if len(items) == 0 {
		return nil
	}
	var store *rawevents.Store[TTx]
	b := newBatchTx[TTx]()
	var done map[uuid.UUID]bool
	for _, it := range items {
		route, err := p.Router.route(it.cmd)
		if err != nil {
			return err
		}
		if done == nil {
			// The first route names the store; look the ids up there.
			store = route.store
			found, err := store.Driver().LookupTx(ctx, tx, firstIDs)
			if err != nil {
				return err
			}
			done = map[uuid.UUID]bool{}
			for _, e := range found {
				done[e.ID] = true
			}
		}
		if done[it.firstID] {
			continue // processed before: its events are stored
		}
		err = route.plan(ctx, tx, b, it.cmd, it.opts)
		if err := p.refused(ctx, it.raw, it.j, it.cmd, err); err != nil {
			return err
		}
	}
	return b.appendTx(ctx, tx)
}

// seed derives the ids of the events of a raw event's j-th command:
// processing the same raw event again yields the same ids, so nothing is
// appended twice.
func (p *Processor[TTx]) seed(raw event.Event, j int) uuid.UUID {
	var buf [64]byte
	name := strconv.AppendInt(append(append(append(buf[:0], "processor:"...), p.Name...), '/'), int64(j), 10)
	return seedAt(raw.Position, raw.ID, name)
}

// metadata is the audit trail of the events a raw event causes.
func (p *Processor[TTx]) metadata(raw event.Event) event.Metadata {
	origin := &event.Origin{Position: raw.Position}
	if raw.Metadata.Origin != nil {
		origin.Source, origin.ID = raw.Metadata.Origin.Source, raw.Metadata.Origin.ID
	}
	causation := raw.ID.String()
	correlation := cmp.Or(raw.Metadata.CorrelationID, causation)
	return event.Metadata{
		CorrelationID: correlation,
		CausationID:   causation,
		Actor:         p.SubscriptionName(),
		TraceParent:   raw.Metadata.TraceParent,
		TraceState:    raw.Metadata.TraceState,
		Origin:        origin,
		Extra:         map[string]string{"processor": p.Name, "processor_version": strconv.Itoa(max(p.Version, 1))},
	}
}

func (p *Processor[TTx]) countUnknown(t string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unknown == nil {
		p.unknown = map[string]int64{}
	}
	if p.unknown[t] == 0 {
		slog.Info("raw event type without a handler: kept, not processed", "processor", p.Name, "type", t)
	}
	p.unknown[t]++
}

// Unknown returns how many raw events of each type the processor has seen
// without handling them, since it started.
func (p *Processor[TTx]) Unknown() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.unknown))
	for k, v := range p.unknown {
		out[k] = v
	}
	return out
}

// RawData decodes the data of a raw event (a CloudEvent as ingestion
// stored it) into v.
func RawData(raw event.Event, v any) error {
	// A JSON payload, which ingestion keeps inline, is decoded straight
	// from the envelope: about three times faster than reading the whole
	// CloudEvent, and processors decode every raw event at least twice
	// (Key and Process).
	var env eventjson.Envelope
	if err := eventjson.DecodeEnvelope(raw.Data, &env); err == nil && env.SpecVersion == "1.0" && len(env.Data) > 0 && jsonMediaType(env.DataContentType) {
		if err := eventjson.Payload(env.Data, v); err != nil {
			return fmt.Errorf("raw event %s/%s: data: %w", env.Source, env.ID, err)
		}
		return nil
	}
	ce, err := ingest.Decode(raw.Data)
	if err != nil {
		return err
	}
	if err := ce.DataAs(v); err != nil {
		return fmt.Errorf("raw event %s/%s: data: %w", ce.Source(), ce.ID(), err)
	}
	return nil
}

// jsonMediaType reports whether a CloudEvent's datacontenttype makes its
// data JSON: none, application/json, text/json, or a +json type.
func jsonMediaType(contentType string) bool {
	media, _, _ := strings.Cut(contentType, ";")
	media = strings.ToLower(strings.TrimSpace(media))
	return media == "" || media == "application/json" || media == "text/json" || strings.HasSuffix(media, "+json")
}
