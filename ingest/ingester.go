package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// Store is what an Ingester needs of a store; *rawevents.Store satisfies
// it whatever its driver.
type Store interface {
	PrepareIfAbsent(events []rawevents.StreamEvent) (*rawevents.Prepared, error)
	AppendPrepared(ctx context.Context, batches ...*rawevents.Prepared) ([]rawevents.Outcome, error)
}

// Result is what became of one raw event.
type Result struct {
	Source string `json:"source"`
	ID     string `json:"id"`
	// Position is the event's position in the global log: where this
	// delivery stored it, or where the first delivery did.
	Position int64 `json:"position"`
	// Duplicate reports that the event had been delivered before and this
	// delivery stored nothing.
	Duplicate bool `json:"duplicate"`
}

// Config configures an Ingester. Nil means the defaults.
type Config struct {
	// MaxBatch is the most events one transaction takes from the requests
	// waiting for it. Default 1,000.
	MaxBatch int
	// Committers is how many transactions may run at once. SQLite writes
	// one at a time whatever this says; PostgreSQL gains from a few.
	// Default 1.
	Committers int
	// Now is the clock that stamps receive times. Default time.Now.
	Now func() time.Time
}

// Ingester stores raw events with group commit: requests that arrive while
// a transaction is being committed wait together and go into the next one,
// so the cost of a commit is shared without holding anyone back for a
// timer. Each request is answered when the transaction holding its events
// has committed (durably: the store's guarantee), or with its error.
type Ingester struct {
	store  Store
	config Config
	queue  chan *request

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	wg     sync.WaitGroup
}

type request struct {
	events *rawevents.Prepared
	done   chan reply
}

type reply struct {
	outcomes []rawevents.Outcome
	err      error
}

// ErrClosed is returned by Ingest after Close.
var ErrClosed = errors.New("ingester closed")

// New starts an Ingester on store. Close stops it.
func New(store Store, config *Config) *Ingester {
	cfg := Config{}
	if config != nil {
		cfg = *config
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1_000
	}
	if cfg.Committers <= 0 {
		cfg.Committers = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	in := &Ingester{store: store, config: cfg, queue: make(chan *request, 4*cfg.MaxBatch)}
	for range cfg.Committers {
		in.wg.Go(in.commit)
	}
	return in
}

// Ingest checks raws and stores them as one all-or-nothing unit: an
// invalid event fails the request with an *InvalidError and stores
// nothing. It returns when the events are durable, one Result per raw
// event, in order.
func (in *Ingester) Ingest(ctx context.Context, raws []Raw) ([]Result, error) {
	receivedAt := in.config.Now().UTC()
	events := make([]rawevents.StreamEvent, len(raws))
	for i := range raws {
		if err := Check(i, &raws[i].Event); err != nil {
			return nil, err
		}
		se, err := raws[i].StreamEvent(receivedAt)
		if err != nil {
			return nil, &InvalidError{Index: i, Reason: err.Error()}
		}
		events[i] = se
	}
	if len(events) == 0 {
		return []Result{}, nil
	}
	// Checked here, on the caller's goroutine: the committer's one
	// transaction is what every request waits for.
	prepared, err := in.store.PrepareIfAbsent(events)
	if err != nil {
		var ve *event.ValidationError
		if errors.As(err, &ve) {
			return nil, &InvalidError{Index: ve.Index, Reason: fmt.Sprintf("%s %s", ve.Field, ve.Reason)}
		}
		return nil, err
	}

	req := &request{events: prepared, done: make(chan reply, 1)}
	in.mu.RLock()
	if in.closed {
		in.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case in.queue <- req:
		in.mu.RUnlock()
	case <-ctx.Done():
		in.mu.RUnlock()
		return nil, ctx.Err()
	}
	// Once queued, the events will be committed or fail whatever happens to
	// ctx: waiting for the answer keeps "2xx means durable" true.
	r := <-req.done
	if r.err != nil {
		return nil, r.err
	}
	results := make([]Result, len(raws))
	for i, o := range r.outcomes {
		results[i] = Result{Source: raws[i].Event.Source(), ID: raws[i].Event.ID(), Position: o.Event.Position, Duplicate: o.Existing}
	}
	return results, nil
}

// Close stops taking requests, commits those already queued, and returns
// when every committer has finished.
func (in *Ingester) Close() {
	in.mu.Lock()
	if !in.closed {
		in.closed = true
		close(in.queue)
	}
	in.mu.Unlock()
	in.wg.Wait()
}

// commit takes a request, adds whatever else is waiting (up to MaxBatch
// events), stores them in one transaction and answers each request.
func (in *Ingester) commit() {
	for first := range in.queue {
		batch := []*request{first}
		all := []*rawevents.Prepared{first.events}
		n := first.events.Len()
	gather:
		for n < in.config.MaxBatch {
			select {
			case r, ok := <-in.queue:
				if !ok {
					break gather
				}
				batch = append(batch, r)
				all = append(all, r.events)
				n += r.events.Len()
			default:
				break gather
			}
		}
		outcomes, err := in.store.AppendPrepared(context.Background(), all...)
		if err != nil && len(batch) > 1 {
			// One request's events may be what the database refused: each
			// goes again alone, so that it cannot fail the others.
			for _, r := range batch {
				outcomes, err := in.store.AppendPrepared(context.Background(), r.events)
				r.done <- reply{outcomes: outcomes, err: err}
			}
			continue
		}
		for _, r := range batch {
			if err != nil {
				r.done <- reply{err: err}
				continue
			}
			r.done <- reply{outcomes: outcomes[:r.events.Len()]}
			outcomes = outcomes[r.events.Len():]
		}
	}
}
