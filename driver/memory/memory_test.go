package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/memory"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/rawtest"
	"github.com/rawevents/rawevents/storetest"
)

type testBundle struct {
	driver *memory.Driver
	store  *rawevents.Store[*memory.Tx]
}

func setup(t *testing.T, config *memory.Config) *testBundle {
	t.Helper()
	d, err := memory.New(config)
	if err != nil {
		t.Fatal(err)
	}
	store, err := rawevents.NewStore(context.Background(), d, nil) // no Migrate: there is no schema
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &testBundle{driver: d, store: store}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) *storetest.Harness[*memory.Tx] {
		b := setup(t, nil)
		return &storetest.Harness[*memory.Tx]{
			Store:    b.store,
			Begin:    b.driver.Begin,
			Commit:   func(_ context.Context, tx *memory.Tx) error { return tx.Commit() },
			Rollback: func(_ context.Context, tx *memory.Tx) error { return tx.Rollback() },
			NoSQL:    true,
		}
	})
}

// TestEventsAreCopied changes everything a caller holds of an event (what
// it appended, the append's result, what it read) and finds the stored
// event unchanged.
func TestEventsAreCopied(t *testing.T) {
	t.Parallel()
	b := &testBundle{store: rawtest.Memory(t)}
	ctx := ctxT(t)
	proposed := event.Proposed{Type: "t", Data: json.RawMessage(`{"n":1}`), Metadata: event.Metadata{
		Origin: &event.Origin{Source: "src", ID: "1"}, Extra: map[string]string{"k": "v"},
	}}
	res, err := b.store.Append(ctx, "s", event.NoStream, proposed)
	if err != nil {
		t.Fatal(err)
	}
	want, err := b.store.ReadStream(ctx, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	spoil := func(data json.RawMessage, meta event.Metadata) {
		data[1] = 'X'
		meta.Origin.ID = "forged"
		meta.Extra["k"] = "forged"
	}
	spoil(proposed.Data, proposed.Metadata)
	spoil(res.Events[0].Data, res.Events[0].Metadata)
	read, err := b.store.ReadStream(ctx, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	spoil(read[0].Data, read[0].Metadata)
	looked, err := b.store.Lookup(ctx, want[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	spoil(looked[0].Data, looked[0].Metadata)

	got, err := b.store.ReadStream(ctx, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || string(got[0].Data) != `{"n":1}` || got[0].Metadata.Extra["k"] != "v" {
		t.Fatalf("a caller changed a stored event: %+v, want %+v", got, want)
	}
}

// TestTxWritesAreItsOwnUntilCommit: reads inside a transaction see its
// writes, reads outside see them only once it commits.
func TestTxWritesAreItsOwnUntilCommit(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := ctxT(t)
	d := b.driver
	tx, err := d.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.store.AppendTx(ctx, tx, "s", event.NoStream, event.Proposed{Type: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveSnapshotTx(ctx, tx, &driver.Snapshot{StreamID: "s", Version: 1, SchemaVersion: 1, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	ids := []uuid.UUID{res.Events[0].ID}
	latest := &driver.LatestSnapshotParams{StreamID: "s", SchemaVersion: 1}

	if got, err := d.LookupTx(ctx, tx, ids); err != nil || len(got) != 1 {
		t.Fatalf("inside: lookup %+v, %v", got, err)
	}
	if got, err := d.LatestSnapshotTx(ctx, tx, latest); err != nil || got == nil || string(got.Data) != "x" {
		t.Fatalf("inside: snapshot %+v, %v", got, err)
	}
	if got, err := d.Lookup(ctx, ids); err != nil || len(got) != 0 {
		t.Fatalf("outside, before commit: lookup %+v, %v", got, err)
	}
	if got, err := d.LatestSnapshot(ctx, latest); err != nil || got != nil {
		t.Fatalf("outside, before commit: snapshot %+v, %v", got, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Lookup(ctx, ids); err != nil || len(got) != 1 {
		t.Fatalf("after commit: lookup %+v, %v", got, err)
	}
	if got, err := d.LatestSnapshot(ctx, latest); err != nil || got == nil {
		t.Fatalf("after commit: snapshot %+v, %v", got, err)
	}
}

// TestOneWriterAtATime: while a transaction is open, every other writer
// waits for it, and gives up when its context ends.
func TestOneWriterAtATime(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tx, err := b.driver.Begin(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func(ctx context.Context) error{
		"Begin": func(ctx context.Context) error { _, err := b.driver.Begin(ctx); return err },
		"Append": func(ctx context.Context) error {
			_, err := b.store.Append(ctx, "s", event.Any, event.Proposed{Type: "t"})
			return err
		},
		"Claim": func(ctx context.Context) error {
			_, err := b.driver.Claim(ctx, &driver.ClaimParams{Subscription: "sub", Partitions: 1, Owner: "a", Lease: time.Minute})
			return err
		},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := write(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while a transaction is open: err = %v, want DeadlineExceeded", name, err)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Append(ctxT(t), "s", event.Any, event.Proposed{Type: "t"}); err != nil {
		t.Fatalf("append after the rollback: %v", err)
	}
}

// TestTxEndsWithItsContext: the end of Begin's context rolls the
// transaction back and lets the next writer in.
func TestTxEndsWithItsContext(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := b.driver.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.AppendTx(ctx, tx, "s", event.NoStream, event.Proposed{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	cancel()
	next, err := b.driver.Begin(ctxT(t)) // waits until the rollback has let go
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit after the context ended: err = %v, want context.Canceled", err)
	}
	if got, err := b.store.ReadAll(ctxT(t), nil); err != nil || len(got) != 0 {
		t.Fatalf("the log holds %d events (%v), want none", len(got), err)
	}
}

func TestEndedTx(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := ctxT(t)
	tx, err := b.driver.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	_, appendErr := b.store.AppendTx(ctx, tx, "s", event.Any, event.Proposed{Type: "t"})
	for name, err := range map[string]error{"commit": tx.Commit(), "rollback": tx.Rollback(), "append": appendErr} {
		if !errors.Is(err, memory.ErrTxDone) {
			t.Errorf("%s after commit: err = %v, want ErrTxDone", name, err)
		}
	}

	other := setup(t, nil)
	foreign, err := other.driver.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Rollback() //nolint:errcheck
	if _, err := b.store.AppendTx(ctx, foreign, "s", event.Any, event.Proposed{Type: "t"}); err == nil || !strings.Contains(err.Error(), "not begun on this driver") {
		t.Fatalf("append in another driver's transaction: err = %v", err)
	}
}

// TestClose: closing lets go of waiting writers, refuses the commit of a
// transaction still open and every later call.
func TestClose(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := ctxT(t)
	if _, err := b.store.Append(ctx, "s", event.NoStream, event.Proposed{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	tx, err := b.driver.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.AppendTx(ctx, tx, "s", event.Exact(1), event.Proposed{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := b.driver.Begin(ctx)
		waiting <- err
	}()
	if err := b.driver.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, event.ErrClosed) {
		t.Errorf("a Begin waiting at Close: err = %v, want ErrClosed", err)
	}
	if err := tx.Commit(); !errors.Is(err, event.ErrClosed) {
		t.Errorf("commit after Close: err = %v, want ErrClosed", err)
	}
	_, migrateErr := b.driver.Migrate(ctx)
	_, readErr := b.driver.ReadAll(ctx, &driver.ReadAllParams{Limit: 10})
	_, claimErr := b.driver.Claim(ctx, &driver.ClaimParams{Subscription: "sub", Partitions: 1, Owner: "a", Lease: time.Minute})
	for name, err := range map[string]error{"migrate": migrateErr, "read all": readErr, "claim": claimErr, "check schema": b.driver.CheckSchema(ctx)} {
		if !errors.Is(err, event.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
	if err := b.driver.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestCommitWakesReaders: a transaction the caller commits wakes waiting
// readers at once, not at the poll interval.
func TestCommitWakesReaders(t *testing.T) {
	t.Parallel()
	b := setup(t, &memory.Config{PollInterval: time.Hour})
	ctx := ctxT(t)
	woke := make(chan int64, 1)
	go func() {
		pos, err := b.store.WaitForPosition(ctx, 0)
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		woke <- pos
	}()
	tx, err := b.driver.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.AppendTx(ctx, tx, "s", event.NoStream, event.Proposed{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case pos := <-woke:
		if pos != 1 {
			t.Fatalf("woke at %d, want 1", pos)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the commit did not wake the reader")
	}
}

func TestNoSchema(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for range 2 {
		res, err := b.driver.Migrate(ctxT(t))
		if err != nil || res.Version != 0 || len(res.Applied) != 0 {
			t.Fatalf("migrate: %+v, %v; want version 0, nothing applied", res, err)
		}
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	if _, err := memory.New(&memory.Config{PollInterval: -time.Second}); err == nil || !strings.Contains(err.Error(), "PollInterval") {
		t.Fatalf("negative poll interval: err = %v", err)
	}
}
