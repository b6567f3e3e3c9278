package domain

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/eventjson"
)

// Aggregate describes a kind of aggregate: a consistency boundary whose
// state S is built by applying its events in order, one stream per
// instance. Commands are decided against that state (see
// Repository.Execute), and an aggregate's events are appended with the
// version they were decided on, so two decisions never both win.
type Aggregate[S any] struct {
	// Name is the kind ("account"); instance id's stream is Name + "-" +
	// id. Required.
	Name string
	// Types registers the aggregate's events. Required.
	Types *Types
	// Initial returns the state before any event; nil means S's zero
	// value.
	Initial func() S
	// Apply returns the state after one event, given as its registered Go
	// value. It must not mutate what state shares with earlier states
	// (copy maps and slices before changing them) and must be
	// deterministic: replaying the same events gives the same state.
	// Required.
	Apply func(state S, e any) S
	// SnapshotEvery saves a snapshot of the state each time the stream
	// crosses a multiple of it; 0 never snapshots. The state is saved as
	// its JSON encoding, so only what survives encoding/json (exported
	// fields) is kept.
	SnapshotEvery int
	// SnapshotVersion tags the snapshots; change it whenever S's JSON
	// changes meaning, and older snapshots are ignored. 0 means 1.
	SnapshotVersion int
	// CacheSize is how many instances' committed state a repository keeps
	// in memory, so that a command on a recently used instance reads one
	// event instead of a snapshot and a replay; 0 means 10,000, negative
	// keeps none.
	CacheSize int
}

func (a *Aggregate[S]) validate() error {
	var errs []error
	if a.Name == "" {
		errs = append(errs, errors.New("aggregate: Name is required"))
	}
	if a.Types == nil {
		errs = append(errs, fmt.Errorf("aggregate %s: Types is required", a.Name))
	}
	if a.Apply == nil {
		errs = append(errs, fmt.Errorf("aggregate %s: Apply is required", a.Name))
	}
	if a.SnapshotEvery < 0 || a.SnapshotVersion < 0 {
		errs = append(errs, fmt.Errorf("aggregate %s: SnapshotEvery and SnapshotVersion must not be negative", a.Name))
	}
	return errors.Join(errs...)
}

// StreamID returns the stream of the instance id.
func (a *Aggregate[S]) StreamID(id string) string { return a.Name + "-" + id }

func (a *Aggregate[S]) initial() S {
	if a.Initial != nil {
		return a.Initial()
	}
	var zero S
	return zero
}

func (a *Aggregate[S]) snapshotVersion() int { return max(a.SnapshotVersion, 1) }

// deref returns the value a pointer points at, so that Apply sees the
// same values whether a decision returned values or pointers.
func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return rv.Elem().Interface()
	}
	return v
}

// Fold applies events, given as their registered Go values, to state. It
// is how tests and tools build a state without a store.
func (a *Aggregate[S]) Fold(state S, events ...any) S {
	for _, e := range events {
		state = a.Apply(state, deref(e))
	}
	return state
}

// Loaded is an aggregate instance as loaded from the store.
type Loaded[S any] struct {
	ID    string
	State S
	// Version is the stream version the state includes: the version to
	// expect when appending.
	Version int64
	// SnapshotVersion is the stream version of the snapshot the load
	// started from, 0 when it replayed the whole stream.
	SnapshotVersion int64
}

// Repository loads aggregate instances and saves the events decided
// against them.
type Repository[TTx, S any] struct {
	store  *rawevents.Store[TTx]
	agg    *Aggregate[S]
	logger *slog.Logger
	cache  *stateCache[S]
}

// NewRepository returns a repository of agg's instances in store.
func NewRepository[TTx, S any](store *rawevents.Store[TTx], agg *Aggregate[S]) (*Repository[TTx, S], error) {
	if err := agg.validate(); err != nil {
		return nil, err
	}
	size := agg.CacheSize
	if size == 0 {
		size = 10_000
	}
	return &Repository[TTx, S]{store: store, agg: agg, logger: slog.Default().With("aggregate", agg.Name), cache: newStateCache[S](size)}, nil
}

// Aggregate returns the repository's aggregate.
func (r *Repository[TTx, S]) Aggregate() *Aggregate[S] { return r.agg }

// Load returns the instance's current state: its latest usable snapshot
// plus the events after it, read page by page so memory stays bounded
// however long the stream. An instance without events loads as the
// initial state at version 0.
func (r *Repository[TTx, S]) Load(ctx context.Context, id string) (*Loaded[S], error) {
	d := r.store.Driver()
	return r.load(ctx, id, func(p *driver.LatestSnapshotParams) (*driver.Snapshot, error) { return d.LatestSnapshot(ctx, p) },
		func(stream string, o *rawevents.ReadStreamOpts) ([]event.Event, error) {
			return r.store.ReadStream(ctx, stream, o)
		})
}

// LoadTx is Load inside tx: it sees what tx appended.
func (r *Repository[TTx, S]) LoadTx(ctx context.Context, tx TTx, id string) (*Loaded[S], error) {
	d := r.store.Driver()
	return r.load(ctx, id, func(p *driver.LatestSnapshotParams) (*driver.Snapshot, error) { return d.LatestSnapshotTx(ctx, tx, p) },
		func(stream string, o *rawevents.ReadStreamOpts) ([]event.Event, error) {
			return r.store.ReadStreamTx(ctx, tx, stream, o)
		})
}

// LoadFromStart is Load without snapshots: a full replay. Tests use it to
// check that snapshots change nothing.
func (r *Repository[TTx, S]) LoadFromStart(ctx context.Context, id string) (*Loaded[S], error) {
	return r.load(ctx, id, func(*driver.LatestSnapshotParams) (*driver.Snapshot, error) { return nil, nil },
		func(stream string, o *rawevents.ReadStreamOpts) ([]event.Event, error) {
			return r.store.ReadStream(ctx, stream, o)
		})
}

func (r *Repository[TTx, S]) load(ctx context.Context, id string,
	latest func(*driver.LatestSnapshotParams) (*driver.Snapshot, error),
	read func(string, *rawevents.ReadStreamOpts) ([]event.Event, error),
) (*Loaded[S], error) {
	stream := r.agg.StreamID(id)
	out := &Loaded[S]{ID: id, State: r.agg.initial()}
	if r.agg.SnapshotEvery > 0 {
		snap, err := latest(&driver.LatestSnapshotParams{StreamID: stream, SchemaVersion: r.agg.snapshotVersion()})
		if err != nil {
			return nil, err
		}
		if snap != nil {
			state := r.agg.initial()
			if err := eventjson.Payload(snap.Data, &state); err != nil {
				// A snapshot is a cache: one that does not decode is ignored.
				r.logger.Warn("snapshot ignored", "stream", stream, "version", snap.Version, "err", err)
			} else {
				out.State, out.Version, out.SnapshotVersion = state, snap.Version, snap.Version
			}
		}
	}
	for {
		page, err := read(stream, &rawevents.ReadStreamOpts{From: out.Version + 1, Limit: rawevents.DefaultPageSize})
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			v, err := r.agg.Types.Decode(e)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", stream, err)
			}
			out.State, out.Version = r.agg.Apply(out.State, v), e.StreamVersion
		}
		if len(page) < rawevents.DefaultPageSize {
			return out, nil
		}
	}
}

// loadCachedTx loads an instance inside tx from the cache when the cache
// holds the stream's current version, read inside tx: entries are only
// ever committed state, and committed versions never change, so a match
// means the same history. Otherwise it loads as LoadTx does.
func (r *Repository[TTx, S]) loadCachedTx(ctx context.Context, tx TTx, id string) (*Loaded[S], error) {
	stream := r.agg.StreamID(id)
	if c, ok := r.cache.get(stream); ok {
		last, err := r.store.ReadStreamTx(ctx, tx, stream, &rawevents.ReadStreamOpts{Backwards: true, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(last) == 1 && last[0].StreamVersion == c.version {
			return &Loaded[S]{ID: id, State: c.state, Version: c.version}, nil
		}
		r.cache.remove(stream)
	}
	return r.LoadTx(ctx, tx, id)
}

// Decision decides the events a command asks for from the instance's
// current state, or returns a domain error (the command is refused; it is
// never retried).
type Decision[S any] func(state S) ([]any, error)

// ExecuteOpts are the options of Execute. Nil means no metadata and fresh
// event ids.
type ExecuteOpts struct {
	// Metadata is stored with every event.
	Metadata event.Metadata
	// OccurredAt is the events' event time; zero means when they are
	// recorded. A processor sets it to its raw event's time, so a domain
	// event says when the fact behind it happened.
	OccurredAt time.Time
	// IDSeed, when set, derives the events' ids from it (the first is
	// DeriveID(IDSeed, 0), and so on), and a command whose first event is
	// already stored is not decided again: executing the same command
	// with the same seed twice appends once.
	IDSeed uuid.UUID
	// MaxConflicts bounds how often Execute decides again after a
	// concurrent append to the same instance; 0 means 10.
	MaxConflicts int
}

// Result is what an execution appended.
type Result[S any] struct {
	// Events are the decided events, as registered Go values.
	Events []any
	// Append is the store's result; nil when nothing was decided.
	Append *event.AppendResult
	// State is the instance's state after the events.
	State S
	// Duplicate reports a command already executed with the same IDSeed:
	// nothing was decided or appended.
	Duplicate bool
}

// RejectedError wraps the domain error a decision returned: the command
// was refused and nothing was appended.
type RejectedError struct {
	Stream string
	Err    error
}

// Error describes the refusal in one line.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("%s: command rejected: %v", e.Stream, e.Err)
}

// Unwrap returns the domain error.
func (e *RejectedError) Unwrap() error { return e.Err }

// encode turns decided events into the events to append (with the
// options' metadata, time and derived ids) and applies them to state.
func (r *Repository[TTx, S]) encode(decided []any, state S, opts *ExecuteOpts) ([]event.Proposed, S, error) {
	proposed := make([]event.Proposed, len(decided))
	for i, v := range decided {
		p, err := r.agg.Types.Encode(v)
		if err != nil {
			return nil, state, err
		}
		p.Metadata, p.OccurredAt = opts.Metadata, opts.OccurredAt
		if opts.IDSeed != uuid.Nil {
			p.ID = DeriveID(opts.IDSeed, i)
		}
		proposed[i] = p
		state = r.agg.Apply(state, deref(v))
	}
	return proposed, state, nil
}

// DeriveID returns the n-th event id derived from seed, so the same seed
// always yields the same ids. The id keeps the seed's first six bytes and
// takes the rest from a SHA-1 of seed and n (a version 8 UUID): ids from
// seeds that grow (see SeedAt) grow too, and their inserts stay together
// at the end of the store's id index instead of landing on a random page
// each.
func DeriveID(seed uuid.UUID, n int) uuid.UUID {
	// SHA-1 of the seed's bytes and n in decimal, as uuid.NewSHA1(seed, n)
	// hashes them, without its allocations: these ids are stored, so the
	// bytes hashed must never change.
	var buf [16 + 20]byte
	h := sha1.Sum(strconv.AppendInt(append(buf[:0], seed[:]...), int64(n), 10))
	var id uuid.UUID
	copy(id[:6], seed[:6])
	copy(id[6:], h[6:])
	id[6] = id[6]&0x0f | 0x80 // version 8
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id
}

// SeedAt returns a seed for DeriveID whose ids sort by position (the first
// six bytes hold it) and are otherwise determined by name under base.
// Processors seed the events a raw event causes with the raw event's
// position, so that derived ids follow the log.
func SeedAt(position int64, base uuid.UUID, name string) uuid.UUID {
	return seedAt(position, base, []byte(name))
}

// seedAt is SeedAt with the name as bytes. The rest of the seed is
// uuid.NewSHA1(base, name), computed on the stack; like DeriveID's, these
// bytes must never change.
func seedAt(position int64, base uuid.UUID, name []byte) uuid.UUID {
	var buf [16 + 64]byte
	h := sha1.Sum(append(append(buf[:0], base[:]...), name...))
	var seed uuid.UUID
	copy(seed[:], h[:])
	seed[6] = seed[6]&0x0f | 0x50 // version 5, as uuid.NewSHA1 sets it
	seed[8] = seed[8]&0x3f | 0x80 // RFC 9562 variant
	for i := range 6 {
		seed[i] = byte(position >> (8 * (5 - i)))
	}
	return seed
}

// Execute loads the instance, decides, and appends the decided events at
// the version the decision saw, in a transaction of its own. When another
// writer appended to the instance first, it loads and decides again, up
// to MaxConflicts times with a random pause; a domain error is returned at
// once as a *RejectedError.
func (r *Repository[TTx, S]) Execute(ctx context.Context, id string, decide Decision[S], opts *ExecuteOpts) (*Result[S], error) {
	if opts == nil {
		opts = &ExecuteOpts{}
	}
	maxConflicts := opts.MaxConflicts
	if maxConflicts == 0 {
		maxConflicts = 10
	}
	for attempt := 0; ; attempt++ {
		var res *Result[S]
		hctx, committed := rawevents.WithCommitHooks(ctx)
		err := r.store.Driver().InTx(ctx, func(tx TTx) error {
			var err error
			res, err = r.ExecuteTx(hctx, tx, id, decide, opts)
			return err
		})
		if err == nil {
			committed()
		}
		if err == nil || !errors.Is(err, event.ErrConcurrency) || attempt >= maxConflicts {
			return res, err
		}
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// ExecuteTx is Execute inside tx, once: a conflict is returned (matching
// event.ErrConcurrency), and the caller retries with a new transaction.
func (r *Repository[TTx, S]) ExecuteTx(ctx context.Context, tx TTx, id string, decide Decision[S], opts *ExecuteOpts) (*Result[S], error) {
	if opts == nil {
		opts = &ExecuteOpts{}
	}
	d := r.store.Driver()
	if opts.IDSeed != uuid.Nil {
		found, err := d.LookupTx(ctx, tx, []uuid.UUID{DeriveID(opts.IDSeed, 0)})
		if err != nil {
			return nil, err
		}
		if len(found) > 0 {
			loaded, err := r.loadCachedTx(ctx, tx, id)
			if err != nil {
				return nil, err
			}
			return &Result[S]{State: loaded.State, Duplicate: true}, nil
		}
	}
	loaded, err := r.loadCachedTx(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	stream := r.agg.StreamID(id)
	decided, err := decide(loaded.State)
	if err != nil {
		return nil, &RejectedError{Stream: stream, Err: err}
	}
	res := &Result[S]{Events: decided, State: loaded.State}
	if len(decided) == 0 {
		return res, nil
	}
	proposed, state, err := r.encode(decided, loaded.State, opts)
	if err != nil {
		return nil, err
	}
	res.State = state
	res.Append, err = r.store.AppendTx(ctx, tx, stream, event.Exact(loaded.Version), proposed...)
	if err != nil {
		r.cache.remove(stream)
		return nil, err
	}
	if err := r.finishTx(ctx, tx, stream, loaded.Version, res.Append.Version, res.State); err != nil {
		return nil, err
	}
	return res, nil
}
