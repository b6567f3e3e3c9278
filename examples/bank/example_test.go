package bank_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/examples/bank"
	"github.com/rawevents/rawevents/ingest"
)

// Run the bank's processor in a program of your own: a Subscriber works
// the processor's partitions until its context ends.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bank-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	d, err := sqlite.Open(filepath.Join(dir, "bank.db"), nil)
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
	defer store.Close()

	processor, accounts, err := bank.Setup(store)
	if err != nil {
		log.Fatal(err)
	}
	sub, err := processor.Subscription(&rawevents.Subscription[*sql.Tx]{Partitions: 4})
	if err != nil {
		log.Fatal(err)
	}
	subscriber, err := rawevents.NewSubscriber(store, sub)
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- subscriber.Run(runCtx) }()

	// The card processor's events, ingested as the HTTP API ingests them.
	in := ingest.New(store, nil)
	defer in.Close()
	for _, line := range []string{
		`{"specversion":"1.0","source":"cardhub","id":"1","type":"account.opened","data":{"account":"acc-1","owner":"Ana","deposit":10000}}`,
		`{"specversion":"1.0","source":"cardhub","id":"2","type":"card.authorized","data":{"account":"acc-1","authorization":"auth-1","amount":2500}}`,
	} {
		var e cloudevents.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			log.Fatal(err)
		}
		if _, err := in.Ingest(ctx, []ingest.Raw{{Event: e}}); err != nil {
			log.Fatal(err)
		}
	}

	for {
		acc, err := accounts.Load(ctx, "acc-1")
		if err != nil {
			log.Fatal(err)
		}
		if acc.Version == 2 {
			fmt.Printf("%s: balance %d, available %d\n", acc.State.Owner, acc.State.Balance, acc.State.Available())
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// Ana: balance 10000, available 7500
}
