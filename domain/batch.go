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
	// unchecked: the state came from the cache and no read has confirmed
	// it yet. The append's expected version checks it, but a decision
	// that appends nothing (a refusal, a no-op) must check it first.
	unchecked bool
	// finish runs after the append: snapshots, and the cache once the
	// transaction commits.
	finish func(ctx context.Context, tx TTx, res *event.AppendResult) error
}

func newBatchTx[TTx any]() *batchTx[TTx] {
	return &batchTx[TTx]{streams: map[string]*pendingStream[TTx]{}}
}

// planTx decides a command against the instance's state as of the batch
// so far and adds the events to the batch. The instance is loaded once
// per batch: from the cache when it has it (a stale entry makes the
// batch's append fail with a conflict, and the engine then applies the
// batch event by event, which reads the store), else from the store.
func (r *Repository[TTx, S]) planTx(ctx context.Context, tx TTx, b *batchTx[TTx], id string, decide Decision[S], opts *ExecuteOpts) error {
	stream := r.agg.StreamID(id)
	ps, ok := b.streams[stream]
	if !ok {
		loaded, cached, err := r.cachedOrLoadTx(ctx, tx, id)
		if err != nil {
			return err
		}
		ps = &pendingStream[TTx]{expected: loaded.Version, version: loaded.Version, state: loaded.State, unchecked: cached}
		ps.finish = func(ctx context.Context, tx TTx, res *event.AppendResult) error {
			return r.finishTx(ctx, tx, stream, ps.expected, res.Version, ps.state.(S))
		}
		b.streams[stream] = ps
		b.order = append(b.order, stream)
		b.store = r.store
	}
	state := ps.state.(S)
	decided, err := decide(state)
	if (err != nil || len(decided) == 0) && ps.unchecked {
		// Nothing will be appended to catch a stale state: check it now.
		if err := r.checkCachedTx(ctx, tx, stream, ps.expected); err != nil {
			return err
		}
		ps.unchecked = false
	}
	if err != nil {
		return &RejectedError{Stream: stream, Err: err}
	}
	for i, v := range decided {
		p, err := r.agg.Types.Encode(v)
		if err != nil {
			return err
		}
		p.Metadata, p.OccurredAt = opts.Metadata, opts.OccurredAt
		p.ID = DeriveID(opts.IDSeed, i)
		ps.events = append(ps.events, p)
		state = r.agg.Apply(state, deref(v))
	}
	ps.state, ps.version = state, ps.version+int64(len(decided))
	return nil
}

// cachedOrLoadTx returns the cached state without checking it against the
// store, reporting that it did (the caller checks the version: the append
// does, or checkCachedTx), or loads the instance.
func (r *Repository[TTx, S]) cachedOrLoadTx(ctx context.Context, tx TTx, id string) (*Loaded[S], bool, error) {
	if c, ok := r.cache.get(r.agg.StreamID(id)); ok {
		return &Loaded[S]{ID: id, State: c.state, Version: c.version}, true, nil
	}
	loaded, err := r.LoadTx(ctx, tx, id)
	return loaded, false, err
}

// checkCachedTx confirms, reading inside tx, that the stream is still at
// the version a cached state was taken at. When it is not, another
// process wrote to the instance: the entry goes, and the batch fails with
// a conflict, so that the engine applies its events one by one against
// the stored state.
func (r *Repository[TTx, S]) checkCachedTx(ctx context.Context, tx TTx, stream string, version int64) error {
	last, err := r.store.ReadStreamTx(ctx, tx, stream, &rawevents.ReadStreamOpts{Backwards: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(last) == 1 && last[0].StreamVersion == version {
		return nil
	}
	r.cache.remove(stream)
	return &event.ConcurrencyError{StreamID: stream, Expected: event.Exact(version), Actual: -1}
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

// appendTx appends the batch: every stream at the version the batch found
// it at, in one call.
func (b *batchTx[TTx]) appendTx(ctx context.Context, tx TTx) error {
	var appends []rawevents.StreamAppend
	var pending []*pendingStream[TTx]
	for _, stream := range b.order {
		ps := b.streams[stream]
		if len(ps.events) == 0 {
			continue
		}
		appends = append(appends, rawevents.StreamAppend{StreamID: stream, Expected: event.Exact(ps.expected), Events: ps.events})
		pending = append(pending, ps)
	}
	if len(appends) == 0 {
		return nil
	}
	results, err := b.store.AppendManyTx(ctx, tx, appends)
	if err != nil {
		return err
	}
	for i, ps := range pending {
		if err := ps.finish(ctx, tx, results[i]); err != nil {
			return err
		}
	}
	return nil
}
