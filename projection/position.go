package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// ErrWaitTimeout is returned by WaitFor when the read model did not reach
// the position in time.
var ErrWaitTimeout = errors.New("the read model did not reach the position in time")

// ErrIndexing is returned by a search of a read model whose full-text
// index is not built yet: it is catching up with a long log, and its
// indexes are built when it has (see Options.BulkIndexFrom).
var ErrIndexing = errors.New("the read model is catching up: its search index is built when it has")

// runningHere returns the run of a generation's subscription in this
// process, or nil.
func (p *Projector[TTx]) runningHere(name string, gen int) *generationRun[TTx] {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running[subscriptionName(name, gen)]
}

// generationPosition is how far a generation's subscription is.
func (p *Projector[TTx]) generationPosition(ctx context.Context, name string, gen int) (int64, error) {
	if run := p.runningHere(name, gen); run != nil {
		return run.sub.Position(ctx)
	}
	return rawevents.StoredProgress[TTx]{Store: p.read, Name: subscriptionName(name, gen)}.Position(ctx)
}

// Position returns the log position a projection's live read model
// reflects: every event up to it has been applied.
func (p *Projector[TTx]) Position(ctx context.Context, name string) (int64, error) {
	if _, err := p.Projection(name); err != nil {
		return 0, err
	}
	_, at, err := p.livePosition(ctx, name)
	return at, err
}

// livePosition returns a projection's live generation and its position.
func (p *Projector[TTx]) livePosition(ctx context.Context, name string) (*generation, int64, error) {
	live, _, err := p.current(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	at, err := p.generationPosition(ctx, name, live.Generation)
	return live, at, err
}

// upstream returns the lowest position of the upstream stages, or -1
// when there are none.
func (p *Projector[TTx]) upstream(ctx context.Context) (int64, error) {
	low := int64(-1)
	for _, u := range p.opts.Upstream {
		at, err := u.Position(ctx)
		if err != nil {
			return 0, err
		}
		if low < 0 || at < low {
			low = at
		}
	}
	return low, nil
}

// sample is a pair seen together: the upstream stages at Upstream, and
// then the head of the log at Head. Every effect of the events up to
// Upstream is at or below Head.
type sample struct{ upstream, head int64 }

// Reflects returns the highest position of the log whose effects a
// projection's read model shows in full: the effects of every event up to
// it, through the upstream stages (raw events to domain events), have
// been applied. Without upstream stages it is Position. A client that
// ingested at a position sees its write when Reflects is at or past it.
func (p *Projector[TTx]) Reflects(ctx context.Context, name string) (int64, error) {
	position, err := p.Position(ctx, name)
	if err != nil || len(p.opts.Upstream) == 0 {
		return position, err
	}
	up, err := p.upstream(ctx)
	if err != nil {
		return 0, err
	}
	head, err := p.log.Head(ctx)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	samples := append(p.samples[name], sample{upstream: up, head: head})
	best := int64(0)
	keep := samples[:0]
	for _, s := range samples {
		if s.head <= position {
			best = max(best, s.upstream)
			continue
		}
		keep = append(keep, s)
	}
	// The best sample reached stays, so later calls keep its answer.
	p.samples[name] = append([]sample{{upstream: best, head: 0}}, keep[:min(len(keep), 64)]...)
	return min(best, position), nil
}

// WaitFor waits until a projection's read model reflects position (see
// Reflects): first until the upstream stages are past it, then until the
// read model has applied every event the log held at that moment and
// has its indexes (see Options.BulkIndexFrom). It fails with
// ErrWaitTimeout (wrapped) when timeout passes first.
func (p *Projector[TTx]) WaitFor(ctx context.Context, name string, position int64, timeout time.Duration) error {
	if _, err := p.Projection(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := position
	if len(p.opts.Upstream) > 0 {
		for {
			up, err := p.upstream(ctx)
			if err != nil {
				return p.waitErr(ctx, err, position)
			}
			if up >= position {
				break
			}
			if err := p.pause(ctx, p.log); err != nil {
				return p.waitErr(ctx, err, position)
			}
		}
		head, err := p.log.Head(ctx)
		if err != nil {
			return p.waitErr(ctx, err, position)
		}
		target = max(head, position)
	}
	for {
		live, at, err := p.livePosition(ctx, name)
		if err != nil {
			return p.waitErr(ctx, err, position)
		}
		if at >= target && live.Indexed {
			return nil
		}
		if err := p.pause(ctx, p.read); err != nil {
			return p.waitErr(ctx, err, position)
		}
	}
}

// pause waits for a change in store or a short while: checkpoints
// written by other processes are not announced.
func (p *Projector[TTx]) pause(ctx context.Context, store *rawevents.Store[TTx]) error {
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-store.Driver().Changed(ctx):
	case <-t.C:
	}
	return nil
}

func (p *Projector[TTx]) waitErr(ctx context.Context, err error, position int64) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("%w: position %d", ErrWaitTimeout, position)
	}
	return err
}

// Projection states, see Status.State.
const (
	StateLive         = "live"
	StateCatchingUp   = "catching_up"
	StateRebuilding   = "rebuilding"
	StateStopped      = "stopped"
	StateFailed       = "failed"
	StateNeedsRebuild = "needs_rebuild"
)

// Status is how a projection is doing.
type Status struct {
	Name string `json:"name"`
	// Version is the version of the projection's code; BuiltVersion the
	// version that built the live read model.
	Version      int `json:"version"`
	BuiltVersion int `json:"built_version"`
	Generation   int `json:"generation"`
	// Position is the log position the live read model reflects; Head the
	// log's last position.
	Position int64 `json:"position"`
	Head     int64 `json:"head"`
	// Lag is how many positions the read model is behind; LagSeconds how
	// long ago the first event it has not applied was recorded.
	Lag        int64   `json:"lag"`
	LagSeconds float64 `json:"lag_seconds"`
	// Parked counts the events parked and not yet resolved.
	Parked int `json:"parked"`
	// State is one of the State constants. A read model catching up
	// with a long log is catching up until its indexes are built too.
	// One that has caught up is live, behind or not, where this process
	// runs it (see rawevents.Subscriber.ReachedHead); elsewhere, while it
	// is behind, it is taken for catching up: Lag says by how much.
	State string `json:"state"`
	// Indexed is false while the read model is built without its
	// indexes (see Options.BulkIndexFrom): searches of it fail.
	Indexed bool `json:"indexed"`
	// Error says why a failed projection stopped.
	Error string `json:"error,omitempty"`
	// Rebuild is the rebuild under way, if any.
	Rebuild *RebuildStatus `json:"rebuild,omitempty"`
}

// RebuildStatus is the progress of a rebuild.
type RebuildStatus struct {
	Generation int   `json:"generation"`
	Version    int   `json:"version"`
	Position   int64 `json:"position"`
	// Swap says whether the rebuild is swapped in once caught up.
	Swap bool `json:"swap"`
	// Progress is Position over the head of the log, from 0 to 1.
	Progress float64 `json:"progress"`
	// Indexed says whether the new generation's indexes are built; it is
	// swapped in only once they are.
	Indexed bool `json:"indexed"`
}

// Status returns a projection's status.
func (p *Projector[TTx]) Status(ctx context.Context, name string) (*Status, error) {
	pr, err := p.Projection(name)
	if err != nil {
		return nil, err
	}
	live, building, err := p.current(ctx, name)
	if err != nil {
		return nil, err
	}
	head, err := p.log.Head(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{Name: name, Version: pr.Version, BuiltVersion: live.Version, Generation: live.Generation, Head: head, Indexed: live.Indexed}
	if st.Position, err = p.generationPosition(ctx, name, live.Generation); err != nil {
		return nil, err
	}
	st.Lag = max(head-st.Position, 0)
	if st.Lag > 0 {
		next, err := p.log.ReadAll(ctx, &rawevents.ReadAllOpts{After: st.Position, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(next) > 0 {
			st.LagSeconds = max(time.Since(next[0].RecordedAt).Seconds(), 0)
		}
	}
	sub, err := p.read.SubscriptionStatus(ctx, subscriptionName(name, live.Generation))
	switch {
	case errors.Is(err, event.ErrSubscriptionNotFound):
		st.State = StateStopped
	case err != nil:
		return nil, err
	default:
		st.Parked = sub.Parked
		st.State = StateLive
		run := p.runningHere(name, live.Generation)
		switch {
		case sub.State == rawevents.SubscriptionStopped:
			st.State = StateStopped
		case !live.Indexed, st.Lag > 0 && (run == nil || !run.sub.ReachedHead()):
			st.State = StateCatchingUp
		}
	}
	failed := p.failure(name)
	switch {
	case failed != nil:
		st.State, st.Error = StateFailed, failed.Error()
	case live.Version != pr.Version && building == nil:
		st.State = StateNeedsRebuild
	case building != nil:
		st.State = StateRebuilding
	}
	if building != nil {
		rb := &RebuildStatus{Generation: building.Generation, Version: building.Version, Swap: building.Swap, Indexed: building.Indexed}
		if rb.Position, err = p.generationPosition(ctx, name, building.Generation); err != nil {
			return nil, err
		}
		rb.Progress = 1
		if head > 0 {
			rb.Progress = min(float64(rb.Position)/float64(head), 1)
		}
		st.Rebuild = rb
	}
	return st, nil
}
