package bank_test

import (
	"context"
	"database/sql"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/examples/bank"
	"github.com/rawevents/rawevents/rawtest"
)

// TestRun ingests the card processor's CloudEvents as the HTTP API does
// and runs the processor as a subscription until it has caught up.
func TestRun(t *testing.T) {
	t.Parallel()
	store := rawtest.SQLite(t)
	processor, accounts, err := bank.Setup(store)
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	processor.Rejected = func(event.Event, domain.Command, error) { refused.Add(1) }
	ingested := ingestJSON(t, store,
		`{"specversion":"1.0","source":"cardhub","id":"1","type":"account.opened","data":{"account":"acc-1","owner":"Ana","deposit":10000}}`,
		`{"specversion":"1.0","source":"cardhub","id":"2","type":"card.authorized","data":{"account":"acc-1","authorization":"auth-1","amount":2500}}`,
		`{"specversion":"1.0","source":"cardhub","id":"3","type":"card.settled","data":{"account":"acc-1","authorization":"auth-1","amount":3000}}`,
		`{"specversion":"1.0","source":"cardhub","id":"4","type":"card.settled","data":{"account":"acc-1","authorization":"auth-2","amount":90000}}`,
		`{"specversion":"1.0","source":"cardhub","id":"5","type":"card.settled","data":{"amount":100}}`,
	)
	sub, err := processor.Subscription(&rawevents.Subscription[*sql.Tx]{
		Partitions: 4, Backoff: func(int) time.Duration { return time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, store, sub)

	ctx := context.Background()
	acc, err := accounts.Load(ctx, "acc-1")
	if err != nil || acc.State.Balance != 7_000 || len(acc.State.Holds) != 0 || acc.Version != 3 {
		t.Fatalf("acc-1: %+v, %v", acc, err)
	}
	if n := refused.Load(); n != 1 {
		t.Fatalf("%d settlements refused, want 1", n) // the fourth raw event
	}
	parked, err := store.Parked(ctx, sub.Name, nil)
	if err != nil || len(parked) != 1 || parked[0].Position != ingested[4].Position {
		t.Fatalf("parked: %+v, %v", parked, err) // the fifth raw event, which names no account
	}
}
