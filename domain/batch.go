package domain

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// batchTx gathers what many commands decided inside one transaction, per
// stream, so that it is appended in one call: decisions on an instance see
// the earlier decisions of the batch, in memory.
type batchTx[TTx any] struct {
	store   *rawevents.Store[TTx]
	streams map[string]*pendingStream[TTx]
	order   []string
}

// pendingStream is one instance's state through the batch.
type pendingStream[TTx any] struct {
	expected int64 // the version the batch found
	version  int64 // after the batch's events
	state    any
	events   []event.Proposed
	// finish runs after the append: snapshots, and the cache once the
	// transaction commits.
	finish func(ctx context.Context, tx TTx, res *event.AppendResult) error
}

func newBatchTx[TTx any]() *batchTx[TTx] {
	return &batchTx[TTx]{streams: map[string]*pendingStream[TTx]{}}
}

// planTx decides a command against the instance's state as of the batch
// so far and adds the events to the batch. The instance is loaded once
// per batch: from the cache when it has it, else from the store. A stale
// cache entry makes the batch's append fail with a conflict, also for an
// instance that decided nothing (see appendTx), and the engine then
// applies the batch event by event, which reads the store.
func (r *Repository[TTx, S]) planTx(ctx context.Context, tx TTx, b *batchTx[TTx], id string, decide Decision[S], opts *ExecuteOpts) error {
	stream := r.agg.StreamID(id)
	ps, ok := b.streams[stream]
	if !ok {
		loaded, err := r.cachedOrLoadTx(ctx, tx, id)
		if err != nil {
			return err
		}
		ps = &pendingStream[TTx]{expected: loaded.Version, version: loaded.Version, state: loaded.State}
		ps.finish = func(ctx context.Context, tx TTx, res *event.AppendResult) error {
			return r.finishTx(ctx, tx, stream, ps.expected, res.Version, ps.state.(S))
		}
		b.streams[stream] = ps
		b.order = append(b.order, stream)
		b.store = r.store
	}
	decided, err := decide(ps.state.(S))
	if err != nil {
		return &RejectedError{Stream: stream, Err: err}
	}
	proposed, state, err := r.encode(decided, ps.state.(S), opts)
	if err != nil {
		return err
	}
	ps.events = append(ps.events, proposed...)
	ps.state, ps.version = state, ps.version+int64(len(decided))
	return nil
}

// cachedOrLoadTx returns the cached state without checking it against the
// store (the batch's append checks the version), or loads the instance.
func (r *Repository[TTx, S]) cachedOrLoadTx(ctx context.Context, tx TTx, id string) (*Loaded[S], error) {
	if c, ok := r.cache.get(r.agg.StreamID(id)); ok {
		return &Loaded[S]{ID: id, State: c.state, Version: c.version}, nil
	}
	return r.LoadTx(ctx, tx, id)
}

// finishTx saves a snapshot when the append crossed a multiple of
// SnapshotEvery, and puts the state in the cache once tx commits.
func (r *Repository[TTx, S]) finishTx(ctx context.Context, tx TTx, stream string, from, to int64, state S) error {
	if every := int64(r.agg.SnapshotEvery); every > 0 && to/every > from/every {
		data, err := json.Marshal(state)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", stream, err)
		}
		if err := r.store.Driver().SaveSnapshotTx(ctx, tx, &driver.Snapshot{
			StreamID: stream, Version: to, SchemaVersion: r.agg.snapshotVersion(), Data: data,
		}); err != nil {
			return err
		}
	}
	rawevents.OnCommit(ctx, func() { r.cache.put(stream, to, state) })
	return nil
}

// appendTx appends the batch: every stream the batch decided on, at the
// version it found the stream at, in one call. A stream whose decisions
// appended nothing (a refusal) is in the call too, with no events: its
// expected version is checked all the same, so a refusal decided on a
// stale cached state fails the batch like any other stale decision.
func (b *batchTx[TTx]) appendTx(ctx context.Context, tx TTx) error {
	if len(b.order) == 0 {
		return nil
	}
	appends := make([]rawevents.StreamAppend, len(b.order))
	for i, stream := range b.order {
		ps := b.streams[stream]
		appends[i] = rawevents.StreamAppend{StreamID: stream, Expected: event.Exact(ps.expected), Events: ps.events}
	}
	results, err := b.store.AppendManyTx(ctx, tx, appends)
	if err != nil {
		return err
	}
	for i, stream := range b.order {
		if err := b.streams[stream].finish(ctx, tx, results[i]); err != nil {
			return err
		}
	}
	return nil
}
