package ingest_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/ingest"
)

// Store raw CloudEvents with group commit; a second delivery of the same
// (source, id) stores nothing and answers with the first one's position.
func ExampleIngester() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ingest-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
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
	defer store.Close()
	in := ingest.New(store, nil)
	defer in.Close()

	e := cloudevents.NewEvent()
	e.SetID("delivery-1")
	e.SetSource("https://shop.example/orders")
	e.SetType("order.placed")
	if err := e.SetData(cloudevents.ApplicationJSON, []byte(`{"total": 12.50}`)); err != nil {
		log.Fatal(err)
	}
	for range 2 { // the sender retries after a timeout
		results, err := in.Ingest(ctx, []ingest.Raw{{Event: e, Transport: ingest.Transport{Mode: "example"}}})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("position %d, duplicate %v\n", results[0].Position, results[0].Duplicate)
	}

	stored, err := store.ReadStream(ctx, ingest.StreamID(e.Source()), nil)
	if err != nil {
		log.Fatal(err)
	}
	back, err := ingest.Decode(stored[0].Data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d event in %s, data %s\n", len(stored), stored[0].StreamID, back.Data())
	// Output:
	// position 1, duplicate false
	// position 1, duplicate true
	// 1 event in raw:https://shop.example/orders, data {"total": 12.50}
}
