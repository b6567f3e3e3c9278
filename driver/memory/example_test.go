package memory_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/memory"
	"github.com/rawevents/rawevents/event"
)

// Open a store in memory, append to a stream and read it back. There is
// nothing to migrate.
func Example() {
	ctx := context.Background()
	d, err := memory.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	res, err := store.Append(ctx, "order-42", event.NoStream,
		event.Proposed{Type: "order.placed", Data: []byte(`{"total": 12.50}`)},
		event.Proposed{Type: "order.paid", Data: []byte(`{"method": "card"}`)},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stream at version", res.Version)

	events, err := store.ReadStream(ctx, "order-42", nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e.StreamVersion, e.Type, string(e.Data))
	}
	// Output:
	// stream at version 2
	// 1 order.placed {"total": 12.50}
	// 2 order.paid {"method": "card"}
}

// A transaction's appends are its own until it commits; a rollback drops
// them.
func Example_transaction() {
	ctx := context.Background()
	d, err := memory.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	tx, err := d.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.AppendTx(ctx, tx, "cart-7", event.NoStream, event.Proposed{Type: "item.added"}); err != nil {
		log.Fatal(err)
	}
	inside, _ := store.ReadStreamTx(ctx, tx, "cart-7", nil)
	outside, _ := store.ReadStream(ctx, "cart-7", nil)
	fmt.Println("inside the transaction:", len(inside), "outside:", len(outside))
	if err := tx.Rollback(); err != nil {
		log.Fatal(err)
	}
	after, _ := store.ReadStream(ctx, "cart-7", nil)
	fmt.Println("after the rollback:", len(after))
	// Output:
	// inside the transaction: 1 outside: 0
	// after the rollback: 0
}
