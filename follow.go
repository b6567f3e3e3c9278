package rawevents

import (
	"context"
	"iter"
	"time"

	"github.com/rawevents/rawevents/event"
)

// WaitForPosition blocks until the global log holds an event after position
// after, and returns the position of the first such event. It sleeps on the
// driver's change notification (LISTEN/NOTIFY on PostgreSQL, in-process on
// SQLite) and looks again at the driver's poll interval at the latest, so
// it neither spins nor misses a change it cannot be told about.
func (s *Store[TTx]) WaitForPosition(ctx context.Context, after int64) (int64, error) {
	for {
		changed := s.driver.Changed(ctx)
		events, err := s.ReadAll(ctx, &ReadAllOpts{After: after, Limit: 1})
		if err != nil {
			return 0, err
		}
		if len(events) > 0 {
			return events[0].Position, nil
		}
		if err := s.sleep(ctx, changed); err != nil {
			return 0, err
		}
	}
}

func (s *Store[TTx]) sleep(ctx context.Context, changed <-chan struct{}) error {
	timer := time.NewTimer(s.driver.PollInterval())
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-changed:
	case <-timer.C:
	}
	if s.closed.Load() {
		return event.ErrClosed
	}
	return nil
}

// FollowOpts configure Follow. Nil follows from the start of the log.
type FollowOpts struct {
	// After is the position to follow from; events after it are yielded.
	After int64
	// PageSize is how many events are read per query; 0 means
	// DefaultPageSize.
	PageSize int
}

// Follow yields every event of the global log after opts.After, in position
// order, first catching up page by page and then waiting for new events as
// they commit. It ends when ctx ends or the consumer stops ranging; an
// error is yielded once, last.
func (s *Store[TTx]) Follow(ctx context.Context, opts *FollowOpts) iter.Seq2[event.Event, error] {
	if opts == nil {
		opts = &FollowOpts{}
	}
	return func(yield func(event.Event, error) bool) {
		after := opts.After
		for {
			changed := s.driver.Changed(ctx)
			page, err := s.ReadAll(ctx, &ReadAllOpts{After: after, Limit: opts.PageSize})
			if err != nil {
				yield(event.Event{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
				after = e.Position
			}
			if len(page) > 0 {
				continue
			}
			if err := s.sleep(ctx, changed); err != nil {
				yield(event.Event{}, err)
				return
			}
		}
	}
}
