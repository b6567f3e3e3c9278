package rawevents

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// SubscriptionStatus says how far a subscription is and what it left
// parked.
type SubscriptionStatus struct {
	Name string `json:"name"`
	// Position is the lowest checkpoint of its partitions: every event up
	// to it is done in every partition.
	Position int64 `json:"position"`
	// Head is the position of the last event in the log.
	Head int64 `json:"head"`
	// Lag is how many positions the slowest partition is behind Head.
	Lag int64 `json:"lag"`
	// Parked counts the events waiting for an operator or being retried.
	Parked int `json:"parked"`
	// State is SubscriptionLive when every partition is held by a live
	// lease and none lags, SubscriptionCatchingUp when every partition is
	// held and some lag, and SubscriptionStopped when some partition has
	// no live owner (no process runs it, or the one that did stopped or
	// died and its lease has not run out).
	State      string                   `json:"state"`
	Partitions []driver.PartitionStatus `json:"partitions"`
}

// Subscription states, see SubscriptionStatus.State.
const (
	SubscriptionLive       = "live"
	SubscriptionCatchingUp = "catching_up"
	SubscriptionStopped    = "stopped"
)

// SubscriptionStatus returns a subscription's status, or fails with
// event.ErrSubscriptionNotFound when it has never run.
func (s *Store[TTx]) SubscriptionStatus(ctx context.Context, name string) (*SubscriptionStatus, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	st, err := s.driver.SubscriptionStatus(ctx, name)
	if err != nil {
		return nil, err
	}
	out := &SubscriptionStatus{Name: name, Head: st.Head, Parked: st.Parked, Partitions: st.Partitions}
	out.Position = lowestCheckpoint(st.Partitions)
	out.Lag = max(out.Head-out.Position, 0)
	now := s.config.Now()
	out.State = SubscriptionLive
	for _, p := range st.Partitions {
		switch {
		case p.Owner == "" || p.LeaseUntil.Before(now):
			out.State = SubscriptionStopped
		case p.Position < out.Head && out.State == SubscriptionLive:
			out.State = SubscriptionCatchingUp
		}
	}
	return out, nil
}

// Subscriptions lists the names of the subscriptions that have run.
func (s *Store[TTx]) Subscriptions(ctx context.Context) ([]string, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	return s.driver.Subscriptions(ctx)
}

// ParkedOpts select parked events. Nil lists the first page of the events
// still waiting for an operator.
type ParkedOpts struct {
	// States keeps events in these states (driver.ParkedWaiting, ...);
	// empty keeps the waiting and retrying ones.
	States []string
	// After is the position to list after.
	After int64
	// Limit is the page size; 0 means DefaultPageSize.
	Limit int
}

// Parked lists a subscription's parked events in position order.
func (s *Store[TTx]) Parked(ctx context.Context, subscription string, opts *ParkedOpts) ([]driver.Parked, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &ParkedOpts{}
	}
	limit, err := pageSize(opts.Limit)
	if err != nil {
		return nil, err
	}
	states := opts.States
	if len(states) == 0 {
		states = []string{driver.ParkedWaiting, driver.ParkedRetrying}
	}
	for _, st := range states {
		if !slices.Contains([]string{driver.ParkedWaiting, driver.ParkedRetrying, driver.ParkedSkipped, driver.ParkedResolved}, st) {
			return nil, &event.ValidationError{Index: -1, Field: "state", Reason: fmt.Sprintf("%q is not a parked state", st)}
		}
	}
	return s.driver.Parked(ctx, &driver.ParkedParams{Subscription: subscription, States: states, Partition: -1, After: opts.After, Limit: limit})
}

// ParkedDecision is an operator's decision on a parked event. It is
// recorded as an event, so the log says who retried or skipped what, and
// why.
type ParkedDecision struct {
	// Actor is who decided; required.
	Actor string
	// Reason says why, for the audit trail.
	Reason string
}

// Types of the events that record decisions on parked events, in the
// stream ParkedStream(subscription).
const (
	ParkedRetryRequested = "rawevents.parked.retry_requested"
	ParkedSkippedType    = "rawevents.parked.skipped"
)

// ParkedStream is the stream that records the decisions on a
// subscription's parked events.
func ParkedStream(subscription string) string { return SystemStreamPrefix + "parked:" + subscription }

// RetryParked asks the subscription to try a parked event again: the
// process holding its partition does so within a second or two, and marks
// it resolved if the handler succeeds or parks it again with the new error.
// The request is recorded as an event.
func (s *Store[TTx]) RetryParked(ctx context.Context, subscription string, position int64, d *ParkedDecision) error {
	return s.decideParked(ctx, subscription, position, d, driver.ParkedRetrying, ParkedRetryRequested)
}

// SkipParked marks a parked event as one the subscription will not handle.
// The decision is recorded as an event.
func (s *Store[TTx]) SkipParked(ctx context.Context, subscription string, position int64, d *ParkedDecision) error {
	return s.decideParked(ctx, subscription, position, d, driver.ParkedSkipped, ParkedSkippedType)
}

func (s *Store[TTx]) decideParked(ctx context.Context, subscription string, position int64, d *ParkedDecision, to, eventType string) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if d == nil || d.Actor == "" {
		return &event.ValidationError{Index: -1, Field: "actor", Reason: "is required: decisions on parked events are audited"}
	}
	data, err := json.Marshal(map[string]any{"subscription": subscription, "position": position, "reason": d.Reason})
	if err != nil {
		return err
	}
	stream := ParkedStream(subscription)
	params, err := s.appendParams(ctx, stream, event.Any, []event.Proposed{{Type: eventType, Data: data, Metadata: event.Metadata{Actor: d.Actor}}})
	if err != nil {
		return err
	}
	return s.driver.InTx(ctx, func(tx TTx) error {
		if err := s.driver.SetParkedStateTx(ctx, tx, &driver.SetParkedStateParams{
			Subscription: subscription, Position: position, From: []string{driver.ParkedWaiting}, To: to,
		}); err != nil {
			return err
		}
		_, err := s.driver.AppendTx(ctx, tx, params)
		return err
	})
}

// ListSnapshots lists aggregate snapshots (without their data) by stream
// and version. A zero Limit means DefaultPageSize.
func (s *Store[TTx]) ListSnapshots(ctx context.Context, params *driver.ListSnapshotsParams) ([]driver.Snapshot, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	p := *params
	limit, err := pageSize(p.Limit)
	if err != nil {
		return nil, err
	}
	p.Limit = limit
	return s.driver.ListSnapshots(ctx, &p)
}

// PruneSnapshots deletes all but the params.Keep newest snapshots of each
// stream with the prefix, and returns how many it deleted. Snapshots are a
// cache: pruning never loses information.
func (s *Store[TTx]) PruneSnapshots(ctx context.Context, params *driver.PruneSnapshotsParams) (int64, error) {
	if err := s.usable(ctx); err != nil {
		return 0, err
	}
	if params.Keep < 0 {
		return 0, &event.ValidationError{Index: -1, Field: "keep", Reason: "is negative"}
	}
	return s.driver.PruneSnapshots(ctx, params)
}

// StoredProgress is a subscription's progress as its stored checkpoints
// tell it: the Position of a subscription that may run in another
// process. (A Subscriber's own Position also counts the progress it has
// not saved yet.)
type StoredProgress[TTx any] struct {
	Store *Store[TTx]
	Name  string
}

// Position returns the lowest checkpoint of the subscription's
// partitions, 0 before it first ran.
func (p StoredProgress[TTx]) Position(ctx context.Context) (int64, error) {
	if err := p.Store.usable(ctx); err != nil {
		return 0, err
	}
	st, err := p.Store.driver.SubscriptionStatus(ctx, p.Name)
	if errors.Is(err, event.ErrSubscriptionNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return lowestCheckpoint(st.Partitions), nil
}

// lowestCheckpoint is how far a subscription is: every event up to it is
// done in every partition.
func lowestCheckpoint(partitions []driver.PartitionStatus) int64 {
	return slices.MinFunc(partitions, func(a, b driver.PartitionStatus) int { return cmp.Compare(a.Position, b.Position) }).Position
}
