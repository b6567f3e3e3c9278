package memory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// Append implements driver.Driver. A repeat of an earlier append (the same
// ids, with the same content, in the same order) stores nothing and
// returns the earlier result with Duplicate set, whatever the expected
// version.
func (d *Driver) Append(ctx context.Context, p *driver.AppendParams) (*event.AppendResult, error) {
	var res *event.AppendResult
	err := d.inTx(ctx, "append", func(tx *Tx) error {
		var err error
		res, err = d.AppendTx(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// AppendTx implements driver.Driver. Readers waiting in this process are
// woken when tx commits.
func (d *Driver) AppendTx(ctx context.Context, tx *Tx, p *driver.AppendParams) (*event.AppendResult, error) {
	var res *event.AppendResult
	err := d.withTx(ctx, "append", tx, func(v view) error {
		var err error
		res, err = v.append(p, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// AppendManyTx implements driver.Driver: one append after the other,
// without looking the ids and keys up again (the caller has, in tx); an id
// already stored, or a key already stored in its stream, fails the call
// with event.ErrEventIDReused.
func (d *Driver) AppendManyTx(ctx context.Context, tx *Tx, params []*driver.AppendParams) ([]*event.AppendResult, error) {
	out := make([]*event.AppendResult, len(params))
	err := d.withTx(ctx, "append", tx, func(v view) error {
		for i, p := range params {
			res, err := v.append(p, false)
			if err != nil {
				return err
			}
			out[i] = res
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// append writes p to the transaction's writes, all of it or, after an
// error, nothing. With checkIDs it first looks the ids up, so that a
// repeat of an earlier append returns that append's result.
func (v view) append(p *driver.AppendParams, checkIDs bool) (*event.AppendResult, error) {
	if checkIDs {
		if dup, err := v.findDuplicate(p); err != nil || dup != nil {
			return dup, err
		}
	}
	st := v.stream(p.StreamID)
	current := st.version()
	if !p.Expected.Allows(current) {
		return nil, &event.ConcurrencyError{StreamID: p.StreamID, Expected: p.Expected, Actual: current}
	}
	res := &event.AppendResult{StreamID: p.StreamID, Version: current, Events: make([]event.Event, len(p.Events))}
	if len(p.Events) == 0 {
		return res, nil
	}
	// What the unique indexes on event ids and on keys do in the SQL
	// drivers.
	batch := make(map[uuid.UUID]struct{}, len(p.Events))
	keys := map[string]struct{}{}
	for _, e := range p.Events {
		_, stored := v.position(e.ID)
		if _, twice := batch[e.ID]; stored || twice {
			return nil, fmt.Errorf("memory: append: %w", &event.EventIDReusedError{ID: e.ID})
		}
		batch[e.ID] = struct{}{}
		if e.Key == "" {
			continue
		}
		_, stored = v.keyPosition(event.StreamKey{StreamID: p.StreamID, Key: e.Key})
		if _, twice := keys[e.Key]; stored || twice {
			return nil, fmt.Errorf("memory: append: another event of stream %q has key %q: %w", p.StreamID, e.Key, event.ErrEventIDReused)
		}
		keys[e.Key] = struct{}{}
	}
	next := v.head() + 1
	added := make([]int64, len(p.Events))
	for i, e := range p.Events {
		e = storable(e)
		e.StreamID, e.StreamVersion, e.Position = p.StreamID, current+int64(i)+1, next+int64(i)
		v.w.log = append(v.w.log, e)
		v.w.ids[e.ID] = e.Position
		if e.Key != "" {
			v.w.keys[event.StreamKey{StreamID: e.StreamID, Key: e.Key}] = e.Position
		}
		added[i] = e.Position
		res.Events[i] = clone(e)
	}
	end := res.Events[len(res.Events)-1]
	res.Version = end.StreamVersion
	w := v.w.streams[p.StreamID]
	if w == nil {
		w = &stream{created: end.RecordedAt}
		if current > 0 {
			w.created = st.created
		}
		v.w.streams[p.StreamID] = w
	}
	w.positions = append(w.positions, added...)
	w.updated = end.RecordedAt
	return res, nil
}

// findDuplicate looks the batch's ids up. None used: (nil, nil), append
// normally. All used, by this same batch, in this order: the original
// result. Anything else: an *event.EventIDReusedError naming the first id
// that does not fit.
func (v view) findDuplicate(p *driver.AppendParams) (*event.AppendResult, error) {
	if !slices.ContainsFunc(p.Events, func(e event.Event) bool { _, ok := v.position(e.ID); return ok }) {
		return nil, nil
	}
	res := &event.AppendResult{StreamID: p.StreamID, Duplicate: true, Events: make([]event.Event, len(p.Events))}
	for i, want := range p.Events {
		pos, ok := v.position(want.ID)
		if !ok {
			return nil, &event.EventIDReusedError{ID: want.ID}
		}
		got := v.event(pos)
		if !sameContent(got, p.StreamID, want) || (i > 0 && got.StreamVersion != res.Events[i-1].StreamVersion+1) {
			return nil, &event.EventIDReusedError{ID: want.ID}
		}
		res.Events[i] = clone(*got)
	}
	res.Version = res.Events[len(res.Events)-1].StreamVersion
	return res, nil
}

// sameContent reports whether a stored event is the one proposed again
// for the stream: same stream, type, schema version, data bytes and
// metadata (compared as the SQL drivers store it, in JSON).
func sameContent(stored *event.Event, streamID string, proposed event.Event) bool {
	if stored.StreamID != streamID || stored.Type != proposed.Type ||
		stored.SchemaVersion != proposed.SchemaVersion || !bytes.Equal(stored.Data, proposed.Data) {
		return false
	}
	a, errA := json.Marshal(stored.Metadata)
	b, errB := json.Marshal(proposed.Metadata)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// storable returns the driver's own copy of an event to store, with its
// times as the SQL drivers keep them: UTC, to the microsecond.
func storable(e event.Event) event.Event {
	e = clone(e)
	if len(e.Metadata.Extra) == 0 {
		e.Metadata.Extra = nil // as an empty map reads back from JSON
	}
	e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
	e.RecordedAt = e.RecordedAt.UTC().Truncate(time.Microsecond)
	return e
}

// clone returns a deep copy of e: it shares nothing that either copy's
// holder could change under the other.
func clone(e event.Event) event.Event {
	e.Data = bytes.Clone(e.Data)
	if e.Metadata.Origin != nil {
		origin := *e.Metadata.Origin
		e.Metadata.Origin = &origin
	}
	e.Metadata.Extra = maps.Clone(e.Metadata.Extra)
	return e
}

// LookupTx implements driver.Driver.
func (d *Driver) LookupTx(ctx context.Context, tx *Tx, ids []uuid.UUID) ([]event.Event, error) {
	var out []event.Event
	err := d.withTx(ctx, "lookup", tx, func(v view) error {
		out = v.lookup(ids)
		return nil
	})
	return out, err
}

// Lookup implements driver.Driver.
func (d *Driver) Lookup(ctx context.Context, ids []uuid.UUID) ([]event.Event, error) {
	var out []event.Event
	err := d.read(ctx, "lookup", func(s *state) error {
		out = view{s: s}.lookup(ids)
		return nil
	})
	return out, err
}

// lookup returns the stored events among ids, each once, in position
// order.
func (v view) lookup(ids []uuid.UUID) []event.Event {
	var positions []int64
	for _, id := range ids {
		if pos, ok := v.position(id); ok {
			positions = append(positions, pos)
		}
	}
	return v.at(positions)
}

// LookupKeysTx implements driver.Driver.
func (d *Driver) LookupKeysTx(ctx context.Context, tx *Tx, keys []event.StreamKey) ([]event.Event, error) {
	var out []event.Event
	err := d.withTx(ctx, "lookup", tx, func(v view) error {
		out = v.lookupKeys(keys)
		return nil
	})
	return out, err
}

// LookupKeys implements driver.Driver.
func (d *Driver) LookupKeys(ctx context.Context, keys []event.StreamKey) ([]event.Event, error) {
	var out []event.Event
	err := d.read(ctx, "lookup", func(s *state) error {
		out = view{s: s}.lookupKeys(keys)
		return nil
	})
	return out, err
}

// lookupKeys returns the stored events among keys, each once, in position
// order.
func (v view) lookupKeys(keys []event.StreamKey) []event.Event {
	var positions []int64
	for _, key := range keys {
		if pos, ok := v.keyPosition(key); ok && key.Key != "" {
			positions = append(positions, pos)
		}
	}
	return v.at(positions)
}

// at returns copies of the events at positions, each once, in position
// order.
func (v view) at(positions []int64) []event.Event {
	slices.Sort(positions)
	positions = slices.Compact(positions)
	var out []event.Event
	for _, pos := range positions {
		out = append(out, clone(*v.event(pos)))
	}
	return out
}

// ReadStream implements driver.Driver.
func (d *Driver) ReadStream(ctx context.Context, p *driver.ReadStreamParams) ([]event.Event, error) {
	var out []event.Event
	err := d.read(ctx, "read stream", func(s *state) error {
		out = view{s: s}.readStream(p)
		return nil
	})
	return out, err
}

// ReadStreamTx implements driver.Driver.
func (d *Driver) ReadStreamTx(ctx context.Context, tx *Tx, p *driver.ReadStreamParams) ([]event.Event, error) {
	var out []event.Event
	err := d.withTx(ctx, "read stream", tx, func(v view) error {
		out = v.readStream(p)
		return nil
	})
	return out, err
}

func (v view) readStream(p *driver.ReadStreamParams) []event.Event {
	st := v.stream(p.StreamID)
	var out []event.Event
	if p.Backwards {
		from := p.From
		if from == 0 || from > st.version() {
			from = st.version()
		}
		for version := from; version >= 1 && !full(len(out), p.Limit); version-- {
			out = append(out, clone(*v.event(st.position(version))))
		}
		return out
	}
	for version := max(p.From, 1); version <= st.version() && !full(len(out), p.Limit); version++ {
		out = append(out, clone(*v.event(st.position(version))))
	}
	return out
}

// full reports whether a page of n rows has reached limit, which, as in
// SQL, takes no limit when negative.
func full(n, limit int) bool { return limit >= 0 && n >= limit }

// ReadAll implements driver.Driver. Writes are serialised and positions
// are given under the write lock, so the committed log never has a hole
// that could still fill: a plain range read is gap-free.
func (d *Driver) ReadAll(ctx context.Context, p *driver.ReadAllParams) ([]event.Event, error) {
	var out []event.Event
	err := d.read(ctx, "read all", func(s *state) error {
		v := view{s: s}
		for pos := max(p.After, 0) + 1; pos <= v.head() && !full(len(out), p.Limit); pos++ {
			out = append(out, clone(*v.event(pos)))
		}
		return nil
	})
	return out, err
}

// Head implements driver.Driver.
func (d *Driver) Head(ctx context.Context) (int64, error) {
	var head int64
	err := d.read(ctx, "head", func(s *state) error {
		head = view{s: s}.head()
		return nil
	})
	return head, err
}

// StreamInfo implements driver.Driver.
func (d *Driver) StreamInfo(ctx context.Context, streamID string) (*event.StreamInfo, error) {
	var info *event.StreamInfo
	err := d.read(ctx, "stream info", func(s *state) error {
		st := view{s: s}.stream(streamID)
		if st.version() == 0 {
			return fmt.Errorf("stream %q: %w", streamID, event.ErrStreamNotFound)
		}
		info = &event.StreamInfo{StreamID: streamID, Version: st.version(), LastPosition: st.position(st.version()),
			CreatedAt: st.created, UpdatedAt: st.updated}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}
