package rawevents_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
)

// openExampleStore opens a store in a fresh SQLite file; the returned func
// removes it.
func openExampleStore(ctx context.Context) (*rawevents.Store[*sql.Tx], func()) {
	dir, err := os.MkdirTemp("", "rawevents-example")
	if err != nil {
		log.Fatal(err)
	}
	d, err := sqlite.Open(filepath.Join(dir, "events.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := d.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		log.Fatal(err)
	}
	return store, func() { store.Close(); os.RemoveAll(dir) }
}

// Append events to a stream with optimistic concurrency, then read the
// stream back.
func ExampleStore_Append() {
	ctx := context.Background()
	store, cleanup := openExampleStore(ctx)
	defer cleanup()

	// A new stream: expect that it does not exist yet.
	res, err := store.Append(ctx, "order-42", event.NoStream,
		event.Proposed{Type: "order.placed", Data: []byte(`{"total": 12.50}`)},
		event.Proposed{Type: "order.paid", Data: []byte(`{"method": "card"}`)},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stream at version", res.Version)

	// A writer that decided on stale state is refused, and nothing is stored.
	_, err = store.Append(ctx, "order-42", event.Exact(1), event.Proposed{Type: "order.cancelled"})
	var conflict *event.ConcurrencyError
	if errors.As(err, &conflict) {
		fmt.Println("refused: the stream is at version", conflict.Actual)
	}

	events, err := store.ReadStream(ctx, "order-42", nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Printf("v%d %s %s\n", e.StreamVersion, e.Type, e.Data)
	}
	// Output:
	// stream at version 2
	// refused: the stream is at version 2
	// v1 order.placed {"total": 12.50}
	// v2 order.paid {"method": "card"}
}

// Follow the global log: catch up on what is there, then receive events as
// they are committed.
func ExampleStore_Follow() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, cleanup := openExampleStore(ctx)
	defer cleanup()

	if _, err := store.Append(ctx, "cart-1", event.Any, event.Proposed{Type: "item.added"}); err != nil {
		log.Fatal(err)
	}
	go func() {
		// Appended while the reader is already following.
		if _, err := store.Append(ctx, "cart-2", event.Any, event.Proposed{Type: "item.added"}); err != nil {
			log.Print(err)
		}
	}()

	seen := 0
	for e, err := range store.Follow(ctx, nil) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("#%d %s %s\n", e.Position, e.StreamID, e.Type)
		if seen++; seen == 2 {
			break
		}
	}
	// Output:
	// #1 cart-1 item.added
	// #2 cart-2 item.added
}

// Re-sending an append with the same event ids is safe: the second time
// nothing is stored and the original result comes back.
func ExampleStore_Append_idempotent() {
	ctx := context.Background()
	store, cleanup := openExampleStore(ctx)
	defer cleanup()

	placed := event.Proposed{ID: uuid.MustParse("0190f5c2-6b1e-7c3a-9d4e-2f1a3b4c5d6e"), Type: "order.placed"}
	first, err := store.Append(ctx, "order-7", event.NoStream, placed)
	if err != nil {
		log.Fatal(err)
	}
	again, err := store.Append(ctx, "order-7", event.NoStream, placed) // a retry after a timeout, say
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(again.Duplicate, again.LastPosition() == first.LastPosition())
	// Output:
	// true true
}

// Run a subscription: a handler of the log whose writes commit with its
// checkpoint, so every event takes effect exactly once.
func ExampleSubscriber() {
	ctx := context.Background()
	store, cleanup := openExampleStore(ctx)
	defer cleanup()

	for _, amount := range []string{"12", "30"} {
		if _, err := store.Append(ctx, "order-1", event.Any, event.Proposed{Type: "order.paid", Data: []byte(amount)}); err != nil {
			log.Fatal(err)
		}
	}
	sub, err := rawevents.NewSubscriber(store, &rawevents.Subscription[*sql.Tx]{
		Name:   "receipts",
		Filter: func(e event.Event) bool { return e.Type == "order.paid" },
		// Key keeps each order's events in log order; orders run in parallel.
		Key:        func(e event.Event) string { return e.StreamID },
		Partitions: 4,
		Handle: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			_, err := store.AppendTx(ctx, tx, "receipts-"+e.StreamID, event.Any,
				event.Proposed{Type: "receipt.issued", Data: e.Data, Metadata: event.Metadata{CausationID: e.ID.String()}})
			return err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- sub.Run(runCtx) }()
	for {
		if info, err := store.StreamInfo(ctx, "receipts-order-1"); err == nil && info.Version == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	receipts, err := store.ReadStream(ctx, "receipts-order-1", nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range receipts {
		fmt.Println(r.Type, string(r.Data))
	}
	// Output:
	// receipt.issued 12
	// receipt.issued 30
}
