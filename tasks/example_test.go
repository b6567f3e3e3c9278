package tasks_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/riverqueue/river"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/tasks"
)

// SendReceiptArgs asks for a receipt to be sent for an order.
type SendReceiptArgs struct {
	Order string `json:"order"`
}

// Kind is the task's stored name: it must not change once tasks exist.
func (SendReceiptArgs) Kind() string { return "send_receipt" }

// Enqueue a task in the transaction that appends the events asking for
// it, and work it once the transaction has committed.
func ExampleClient_InsertTx() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "rawevents-tasks-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The store and River's tables, migrated side by side.
	d, err := sqlite.Open(filepath.Join(dir, "events.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := d.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := tasks.MigrateSQLite(ctx, d); err != nil {
		log.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// A client that works send_receipt tasks.
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[SendReceiptArgs]) error {
		events, err := store.ReadStream(ctx, job.Args.Order, nil)
		if err != nil {
			return err
		}
		fmt.Printf("receipt for %s (%s)\n", job.Args.Order, events[len(events)-1].Type)
		return nil
	}))
	client, err := tasks.ForSQLite(d, &tasks.Config{
		Workers: workers,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		log.Fatal(err)
	}
	completed, unsubscribe := client.River().Subscribe(river.EventKindJobCompleted)
	defer unsubscribe()
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Stop(ctx) //nolint:errcheck // the example is over

	// The events and the task commit together, or neither does.
	err = store.Driver().InTx(ctx, func(tx *sql.Tx) error {
		if _, err := store.AppendTx(ctx, tx, "order-42", event.NoStream,
			event.Proposed{Type: "order.placed", Data: []byte(`{"total":12}`)},
			event.Proposed{Type: "order.paid", Data: []byte(`{"method":"card"}`)},
		); err != nil {
			return err
		}
		_, err := client.InsertTx(ctx, tx, SendReceiptArgs{Order: "order-42"}, nil)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	done := <-completed
	fmt.Println(done.Job.Kind, done.Job.State, "at attempt", done.Job.Attempt)
	// Output:
	// receipt for order-42 (order.paid)
	// send_receipt completed at attempt 1
}
