package bank_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/ingest"
)

// ingestJSON stores CloudEvents, given in their JSON format, as the HTTP
// API does: in one all-or-nothing request.
func ingestJSON[TTx any](t *testing.T, store *rawevents.Store[TTx], events ...string) []ingest.Result {
	t.Helper()
	raws := make([]ingest.Raw, len(events))
	for i, s := range events {
		if err := json.Unmarshal([]byte(s), &raws[i].Event); err != nil {
			t.Fatal(err)
		}
		raws[i].Transport = ingest.Transport{Mode: "test"}
	}
	in := ingest.New(store, nil)
	defer in.Close()
	results, err := in.Ingest(context.Background(), raws)
	if err != nil {
		t.Fatal(err)
	}
	return results
}

// runUntilCaughtUp runs sub until every partition has reached the end of
// the log, then stops it.
func runUntilCaughtUp[TTx any](t *testing.T, store *rawevents.Store[TTx], sub *rawevents.Subscription[TTx]) {
	t.Helper()
	subscriber, err := rawevents.NewSubscriber(store, sub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- subscriber.Run(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := store.SubscriptionStatus(ctx, sub.Name)
		if err == nil && st.Lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("%s did not catch up: %+v, %v", sub.Name, st, err)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
