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
	"github.com/rawevents/rawevents/internal/signal"
)

var _ driver.Driver[*Tx] = (*Driver)(nil)

// Config configures the in-memory driver. Nil means the defaults.
type Config struct {
	// PollInterval is how long a waiting reader sleeps, when nothing wakes
	// it, before it looks again. Every commit wakes readers, so it only
	// bounds the wait should a wake-up be missed. Default 1s.
	PollInterval time.Duration
}

func (c *Config) withDefaults() (*Config, error) {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.PollInterval == 0 {
		out.PollInterval = time.Second
	}
	if out.PollInterval < 0 {
		return nil, errors.New("memory: PollInterval must not be negative")
	}
	return &out, nil
}

// Driver keeps an event store in memory. It is safe for concurrent use.
type Driver struct {
	config  *Config
	changed signal.Broadcaster
	// writer holds a token while a transaction, or a write of the driver's
	// own, is under way: the one write connection of this database.
	writer chan struct{}
	// done is closed by Close, to release the writers waiting for the
	// token.
	done chan struct{}

	mu     sync.RWMutex // guards closed and state
	closed bool
	state  *state // what is committed
}

// New returns an empty store driver. It needs no Migrate.
func New(config *Config) (*Driver, error) {
	cfg, err := config.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Driver{
		config: cfg,
		writer: make(chan struct{}, 1),
		done:   make(chan struct{}),
		state:  newState(),
	}, nil
}

// SupportsListenNotify reports true: every commit goes through this
// driver, which wakes the waiting readers, and there is no other process
// whose commits it could miss.
func (d *Driver) SupportsListenNotify() bool { return true }

// AppendManyTxUndone reports false: a failed AppendManyTx keeps the
// streams it appended before the one that failed.
func (d *Driver) AppendManyTxUndone() bool { return false }

// Changed implements driver.Driver.
func (d *Driver) Changed(context.Context) <-chan struct{} { return d.changed.Wait() }

// PollInterval implements driver.Driver.
func (d *Driver) PollInterval() time.Duration { return d.config.PollInterval }

// Close drops everything the driver holds and wakes waiting readers and
// writers. Later calls fail with event.ErrClosed, as does the Commit of a
// transaction still open. Closing twice is harmless.
func (d *Driver) Close() error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		d.state = newState()
		close(d.done)
	}
	d.mu.Unlock()
	d.changed.Broadcast()
	return nil
}

// Migrate implements driver.Driver. There is no schema: it applies nothing
// and reports version 0.
func (d *Driver) Migrate(ctx context.Context) (*driver.MigrateResult, error) {
	if err := d.read(ctx, "migrate", func(*state) error { return nil }); err != nil {
		return nil, err
	}
	return &driver.MigrateResult{Version: 0}, nil
}

// CheckSchema implements driver.Driver. There is no schema to be out of
// date: it fails only after Close.
func (d *Driver) CheckSchema(ctx context.Context) error {
	return d.read(ctx, "check schema", func(*state) error { return nil })
}

// state is a whole database: the committed one, or, in a Tx, the writes
// the transaction keeps aside.
type state struct {
	// log holds the events by position: position p is log[p-1].
	log []event.Event
	// ids maps each event id to its position.
	ids map[uuid.UUID]int64
	// keys maps each deduplication key to the position of its event.
	keys    map[event.StreamKey]int64
	streams map[string]*stream
	subs    map[string]*subscription
	// parked holds parked events by subscription and position.
	parked table[driver.Parked]
	// snapshots holds snapshots by stream and version; Data is the
	// driver's own copy.
	snapshots table[driver.Snapshot]
}

func newState() *state {
	return &state{
		ids:       map[uuid.UUID]int64{},
		keys:      map[event.StreamKey]int64{},
		streams:   map[string]*stream{},
		subs:      map[string]*subscription{},
		parked:    table[driver.Parked]{},
		snapshots: table[driver.Snapshot]{},
	}
}

// stream is a stream's index into the log. In a Tx, positions are only the
// ones the transaction appended.
type stream struct {
	// positions holds the position of each version: version v is at
	// positions[v-1].
	positions        []int64
	created, updated time.Time
}

// table holds rows keyed by a name and a number: parked events by
// subscription and position, snapshots by stream and version.
type table[T any] map[string]map[int64]T

func (t table[T]) get(name string, n int64) (T, bool) {
	row, ok := t[name][n]
	return row, ok
}

func (t table[T]) put(name string, n int64, row T) {
	if t[name] == nil {
		t[name] = map[int64]T{}
	}
	t[name][n] = row
}

// apply commits the writes that tx kept aside.
func (s *state) apply(tx *state) {
	s.log = append(s.log, tx.log...)
	for id, pos := range tx.ids {
		s.ids[id] = pos
	}
	for key, pos := range tx.keys {
		s.keys[key] = pos
	}
	for id, added := range tx.streams {
		st := s.streams[id]
		if st == nil {
			st = &stream{}
			s.streams[id] = st
		}
		st.positions = append(st.positions, added.positions...)
		st.created, st.updated = added.created, added.updated
	}
	for name, sub := range tx.subs {
		s.subs[name] = sub
	}
	for name, rows := range tx.parked {
		for pos, row := range rows {
			s.parked.put(name, pos, row)
		}
	}
	for id, rows := range tx.snapshots {
		for version, row := range rows {
			s.snapshots.put(id, version, row)
		}
	}
}

// read runs fn on the committed state, as a reader outside any
// transaction.
func (d *Driver) read(ctx context.Context, op string, fn func(s *state) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("memory: %s: %w", op, event.ErrClosed)
	}
	return fn(d.state)
}

// exclusive runs fn on the committed state as the one writer, with no
// transaction open. fn changes the state in place, so it must check
// everything before it changes anything: there is nothing to roll back.
func (d *Driver) exclusive(ctx context.Context, op string, fn func(s *state) error) error {
	if err := d.acquire(ctx, op); err != nil {
		return err
	}
	defer d.release()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("memory: %s: %w", op, event.ErrClosed)
	}
	return fn(d.state)
}

// acquire takes the writer token, waiting for the open transaction to end.
func (d *Driver) acquire(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	d.mu.RLock()
	closed := d.closed
	d.mu.RUnlock()
	if closed {
		return fmt.Errorf("memory: %s: %w", op, event.ErrClosed)
	}
	select {
	case d.writer <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("memory: %s: %w", op, ctx.Err())
	case <-d.done:
		return fmt.Errorf("memory: %s: %w", op, event.ErrClosed)
	}
	if err := ctx.Err(); err != nil { // both were ready and the select chose the token
		d.release()
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	return nil
}

// release gives the writer token back.
func (d *Driver) release() { <-d.writer }
