package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// ErrTxDone means a transaction was used after Commit or Rollback, as
// database/sql's ErrTxDone does.
var ErrTxDone = errors.New("transaction has already been committed or rolled back")

// Tx is a transaction of the in-memory driver: begin it with Begin, hand
// it to AppendTx and the other ...Tx methods, end it with Commit or
// Rollback. It holds the driver's one write lock until it ends. It is safe
// for concurrent use, though its operations run one at a time.
type Tx struct {
	d *Driver
	// stop cancels the rollback that the end of Begin's context would do.
	stop func() bool

	mu sync.Mutex // guards err and w
	// err is why the transaction has ended: ErrTxDone after Commit or
	// Rollback, or the error of the context it was begun with.
	err error
	// w holds the transaction's writes: the events it appended (at the
	// positions after the committed log), the positions it added to each
	// stream, and copies of the subscriptions, parked events and
	// snapshots it changed.
	w *state
}

// Begin starts a transaction, first waiting for the one that is open, if
// any, to end. The transaction is rolled back if ctx ends before Commit.
func (d *Driver) Begin(ctx context.Context) (*Tx, error) { return d.begin(ctx, "begin") }

// begin is Begin for the operation op, which names it in errors.
func (d *Driver) begin(ctx context.Context, op string) (*Tx, error) {
	if err := d.acquire(ctx, op); err != nil {
		return nil, err
	}
	tx := &Tx{d: d, w: newState()}
	tx.stop = context.AfterFunc(ctx, func() {
		tx.mu.Lock()
		defer tx.mu.Unlock()
		if tx.err == nil {
			tx.end(ctx.Err())
		}
	})
	return tx, nil
}

// Commit applies the transaction's writes at once, so readers see all of
// them or none, and wakes waiting readers if it appended events. It fails
// with event.ErrClosed, applying nothing, when the driver was closed
// meanwhile.
func (tx *Tx) Commit() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err != nil {
		return fmt.Errorf("memory: commit: %w", tx.err)
	}
	tx.stop()
	d := tx.d
	appended := len(tx.w.log) > 0
	d.mu.Lock()
	closed := d.closed
	if !closed {
		d.state.apply(tx.w)
	}
	d.mu.Unlock()
	tx.end(ErrTxDone)
	if closed {
		return fmt.Errorf("memory: commit: %w", event.ErrClosed)
	}
	if appended {
		d.changed.Broadcast()
	}
	return nil
}

// Rollback drops the transaction's writes. On a transaction that has ended
// it fails with the reason it ended (ErrTxDone, or the error of its
// context), which a deferred Rollback may ignore.
func (tx *Tx) Rollback() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err != nil {
		return fmt.Errorf("memory: rollback: %w", tx.err)
	}
	tx.stop()
	tx.end(ErrTxDone)
	return nil
}

// end ends the transaction and gives the write lock back. tx.mu is held.
func (tx *Tx) end(reason error) {
	tx.err = reason
	tx.w = nil
	tx.d.release()
}

// InTx implements driver.Driver: fn runs in a transaction that is
// committed if it returns nil and rolled back otherwise.
func (d *Driver) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	return d.inTx(ctx, "begin", fn)
}

// inTx is InTx for the operation op, which names it in errors.
func (d *Driver) inTx(ctx context.Context, op string, fn func(tx *Tx) error) error {
	tx, err := d.begin(ctx, op)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // fails harmlessly after Commit; also ends tx if fn panics
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// withTx runs fn on tx's view of the database, for one operation of the
// driver inside tx. fn writes to tx only.
func (d *Driver) withTx(ctx context.Context, op string, tx *Tx, fn func(v view) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	if tx == nil || tx.d != d {
		return fmt.Errorf("memory: %s: the transaction was not begun on this driver", op)
	}
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err != nil {
		return fmt.Errorf("memory: %s: %w", op, tx.err)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("memory: %s: %w", op, event.ErrClosed)
	}
	return fn(view{s: d.state, w: tx.w})
}

// view is the database as one reader sees it: the committed state and,
// for a reader inside a transaction, the transaction's writes on top.
type view struct {
	s *state
	w *state // nil outside a transaction
}

// head is the position of the last event.
func (v view) head() int64 {
	n := len(v.s.log)
	if v.w != nil {
		n += len(v.w.log)
	}
	return int64(n)
}

// event returns the stored event at pos, which is between 1 and head. The
// caller copies what it hands out.
func (v view) event(pos int64) *event.Event {
	if committed := int64(len(v.s.log)); pos > committed {
		return &v.w.log[pos-committed-1]
	}
	return &v.s.log[pos-1]
}

// position returns the position of the event with the given id.
func (v view) position(id uuid.UUID) (int64, bool) {
	if v.w != nil {
		if pos, ok := v.w.ids[id]; ok {
			return pos, true
		}
	}
	pos, ok := v.s.ids[id]
	return pos, ok
}

// keyPosition returns the position of the event with the given key in its
// stream.
func (v view) keyPosition(key event.StreamKey) (int64, bool) {
	if v.w != nil {
		if pos, ok := v.w.keys[key]; ok {
			return pos, true
		}
	}
	pos, ok := v.s.keys[key]
	return pos, ok
}

// streamView is a stream as a view sees it.
type streamView struct {
	committed, added []int64
	created, updated time.Time
}

func (st streamView) version() int64 { return int64(len(st.committed) + len(st.added)) }

// position returns the position of version v, between 1 and version().
func (st streamView) position(v int64) int64 {
	if committed := int64(len(st.committed)); v > committed {
		return st.added[v-committed-1]
	}
	return st.committed[v-1]
}

func (v view) stream(id string) streamView {
	var st streamView
	if s := v.s.streams[id]; s != nil {
		st = streamView{committed: s.positions, created: s.created, updated: s.updated}
	}
	if v.w != nil {
		if s := v.w.streams[id]; s != nil {
			st.added, st.created, st.updated = s.positions, s.created, s.updated
		}
	}
	return st
}

// subscription returns the subscription as the view sees it, or nil.
func (v view) subscription(name string) *subscription {
	if v.w != nil {
		if sub := v.w.subs[name]; sub != nil {
			return sub
		}
	}
	return v.s.subs[name]
}

// writableSubscription returns the transaction's copy of a subscription
// that exists, making it on the first write.
func (v view) writableSubscription(name string) *subscription {
	if sub := v.w.subs[name]; sub != nil {
		return sub
	}
	sub := v.s.subs[name].clone()
	v.w.subs[name] = sub
	return sub
}

func (v view) parked(subscription string, position int64) (driver.Parked, bool) {
	if v.w != nil {
		if p, ok := v.w.parked.get(subscription, position); ok {
			return p, true
		}
	}
	return v.s.parked.get(subscription, position)
}
