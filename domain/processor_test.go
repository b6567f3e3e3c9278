package domain_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
)

// Commands of the account aggregate.

type Deposit struct {
	Account string
	Amount  int
}

func (c Deposit) AggregateID() string { return c.Account }

type Withdraw struct {
	Account string
	Amount  int
}

func (c Withdraw) AggregateID() string { return c.Account }

// transfer is the data of the raw events the bank sends.
type transfer struct {
	Account string `json:"account"`
	Amount  int    `json:"amount"`
}

// ingestRaw stores a raw event the way ingestion does and returns it as
// stored.
func ingestRaw[TTx any](t *testing.T, store *rawevents.Store[TTx], source, id, typ string, data any, at time.Time) event.Event {
	t.Helper()
	e := ce.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(at)
	if err := e.SetData("application/json", data); err != nil {
		t.Fatal(err)
	}
	se, err := (&ingest.Raw{Event: e, Transport: ingest.Transport{Mode: "structured"}}).StreamEvent(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, err := store.AppendIfAbsent(context.Background(), []rawevents.StreamEvent{se})
	if err != nil {
		t.Fatal(err)
	}
	return out[0].Event
}

type bank[TTx any] struct {
	repo      *domain.Repository[TTx, Account]
	processor *domain.Processor[TTx]
	rejected  atomic.Int32
}

func newBank[TTx any](t *testing.T, store *rawevents.Store[TTx]) *bank[TTx] {
	repo, err := domain.NewRepository(store, accountAggregate(0))
	if err != nil {
		t.Fatal(err)
	}
	router := domain.NewRouter[TTx]()
	must(domain.Route(router, repo, func(s Account, c Deposit) ([]any, error) { return deposit(c.Amount)(s) }))
	must(domain.Route(router, repo, func(s Account, c Withdraw) ([]any, error) { return withdraw(c.Amount)(s) }))
	b := &bank[TTx]{repo: repo}
	b.processor = &domain.Processor[TTx]{
		Name:    "bank",
		Version: 3,
		Types:   []string{"bank.transfer"},
		Key: func(raw event.Event) string {
			var tr transfer
			_ = domain.RawData(raw, &tr)
			return tr.Account
		},
		Process: func(ctx context.Context, raw event.Event) ([]domain.Command, error) {
			var tr transfer
			if err := domain.RawData(raw, &tr); err != nil {
				return nil, err
			}
			if tr.Amount < 0 {
				return []domain.Command{Withdraw{Account: tr.Account, Amount: -tr.Amount}}, nil
			}
			return []domain.Command{Deposit{Account: tr.Account, Amount: tr.Amount}}, nil
		},
		Router:   router,
		Rejected: func(event.Event, domain.Command, error) { b.rejected.Add(1) },
	}
	return b
}

func TestProcessor(t *testing.T) {
	t.Parallel()
	forBoth(t, testProcessor[*sql.Tx], testProcessor[pgx.Tx])
}

// testProcessor runs a processor over raw events: domain events appear with
// their audit trail, a refused command is a decision and not a failure, an
// unknown raw type is kept and counted, and handling a raw event again
// appends nothing.
func testProcessor[TTx any](t *testing.T, store *rawevents.Store[TTx]) {
	ctx := context.Background()
	b := newBank(t, store)
	day := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ingestRaw(t, store, "bank", "t1", "bank.transfer", transfer{"acc-1", 100}, day)
	ingestRaw(t, store, "bank", "t2", "bank.transfer", transfer{"acc-1", -30}, day.Add(time.Hour))
	ingestRaw(t, store, "bank", "t3", "bank.transfer", transfer{"acc-1", -500}, day.Add(2*time.Hour)) // refused
	ingestRaw(t, store, "bank", "a1", "bank.audit", map[string]string{"note": "x"}, day)              // unknown
	// Happened before t2 but arrives after it: the processor sees its time.
	late := ingestRaw(t, store, "bank", "t0", "bank.transfer", transfer{"acc-2", 5}, day.Add(-time.Hour))

	sub, err := b.processor.Subscription(&rawevents.Subscription[TTx]{Partitions: 2, Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var seenLate atomic.Bool
	see := func(e event.Event) {
		if e.ID == late.ID && e.OccurredAt.Equal(day.Add(-time.Hour)) && e.RecordedAt.After(e.OccurredAt) {
			seenLate.Store(true)
		}
	}
	handle, handleBatch := sub.Handle, sub.HandleBatch
	sub.Handle = func(ctx context.Context, tx TTx, e event.Event) error {
		see(e)
		return handle(ctx, tx, e)
	}
	sub.HandleBatch = func(ctx context.Context, tx TTx, events []event.Event) error {
		for _, e := range events {
			see(e)
		}
		return handleBatch(ctx, tx, events)
	}
	runSubscription(t, store, sub, func() bool {
		st, err := store.SubscriptionStatus(ctx, sub.Name)
		return err == nil && st.Lag == 0
	})
	acc, err := b.repo.Load(ctx, "acc-1")
	if err != nil {
		t.Fatal(err)
	}
	if acc.State.Balance != 70 || acc.Version != 2 {
		t.Fatalf("acc-1: %+v", acc)
	}
	if n := b.rejected.Load(); n != 1 {
		t.Fatalf("%d commands refused, want 1", n)
	}
	if got := b.processor.Unknown(); got["bank.audit"] != 1 || len(got) != 1 {
		t.Fatalf("unknown types: %v", got)
	}
	if !seenLate.Load() {
		t.Fatal("the late raw event did not reach the processor with its event time")
	}
	events, err := store.ReadStream(ctx, "account-acc-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	raws, err := store.ReadStream(ctx, ingest.StreamID("bank"), nil)
	if err != nil {
		t.Fatal(err)
	}
	first, raw := events[0], raws[0]
	m := first.Metadata
	if m.CausationID != raw.ID.String() || m.CorrelationID != raw.ID.String() || m.Actor != "processor:bank" ||
		m.Origin == nil || *m.Origin != (event.Origin{Source: "bank", ID: "t1", Position: raw.Position}) ||
		m.Extra["processor"] != "bank" || m.Extra["processor_version"] != "3" || !first.OccurredAt.Equal(day) {
		t.Fatalf("metadata of the first domain event: %+v (origin %+v), occurred at %v", m, m.Origin, first.OccurredAt)
	}

	// Effectively once: handling the raw events again, as after a crash
	// between an append and its checkpoint, appends nothing.
	for _, r := range raws {
		if err := store.Driver().InTx(ctx, func(tx TTx) error { return sub.Handle(ctx, tx, r) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Driver().InTx(ctx, func(tx TTx) error { return sub.HandleBatch(ctx, tx, raws) }); err != nil {
		t.Fatal(err)
	}
	again, err := store.ReadStream(ctx, "account-acc-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(events) {
		t.Fatalf("handling the raw events again appended %d events", len(again)-len(events))
	}

	// Another writer appends to acc-1 behind the processor's cache: the
	// next batch's append conflicts, and the engine applies it event by
	// event against the stored state.
	refusedBefore := b.rejected.Load() // the replays above decided t3 again
	other, err := domain.NewRepository(store, accountAggregate(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Execute(ctx, "acc-1", deposit(1000), nil); err != nil {
		t.Fatal(err)
	}
	// t4 appends only if the processor sees the deposit it did not make:
	// refused against its cached state, it would append nothing to acc-1
	// for the version check to catch, while the batch commits acc-2.
	ingestRaw(t, store, "bank", "t4", "bank.transfer", transfer{"acc-1", -1050}, day.Add(3*time.Hour))
	neighbour := "acc-2"
	for n := 2; rawevents.PartitionOf(neighbour, 2) != rawevents.PartitionOf("acc-1", 2); n++ {
		neighbour = fmt.Sprintf("acc-%d", n+1)
	}
	// A batch of two in acc-1's partition.
	ingestRaw(t, store, "bank", "t4b", "bank.transfer", transfer{neighbour, 1}, day.Add(3*time.Hour))
	runSubscription(t, store, sub, func() bool {
		st, err := store.SubscriptionStatus(ctx, sub.Name)
		return err == nil && st.Lag == 0
	})
	ingestRaw(t, store, "bank", "t5", "bank.transfer", transfer{"acc-1", 1}, day.Add(4*time.Hour))
	runSubscription(t, store, sub, func() bool {
		st, err := store.SubscriptionStatus(ctx, sub.Name)
		return err == nil && st.Lag == 0
	})
	acc, err = b.repo.Load(ctx, "acc-1")
	if err != nil || acc.State.Balance != 70+1000-1050+1 || b.rejected.Load() != refusedBefore {
		t.Fatalf("acc-1 after another writer: %+v, %v; %d refused", acc, err, b.rejected.Load())
	}
}

// runSubscription runs sub until done reports true.
func runSubscription[TTx any](t *testing.T, store *rawevents.Store[TTx], sub *rawevents.Subscription[TTx], done func() bool) {
	t.Helper()
	s, err := rawevents.NewSubscriber(store, sub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("subscription %s did not finish: %v", sub.Name, <-errc)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestBadSnapshotIgnored(t *testing.T) {
	t.Parallel()
	forBoth(t, testBadSnapshotIgnored[*sql.Tx], testBadSnapshotIgnored[pgx.Tx])
}

// testBadSnapshotIgnored: a snapshot that does not decode, or of another
// snapshot version, is ignored and the aggregate is rebuilt from events.
func testBadSnapshotIgnored[TTx any](t *testing.T, store *rawevents.Store[TTx]) {
	ctx := context.Background()
	agg := accountAggregate(2)
	repo, err := domain.NewRepository(store, agg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := repo.Execute(ctx, "s", deposit(10), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Driver().InTx(ctx, func(tx TTx) error {
		return store.Driver().SaveSnapshotTx(ctx, tx, &driver.Snapshot{StreamID: "account-s", Version: 3, SchemaVersion: 1, Data: []byte("{not json")})
	}); err != nil {
		t.Fatal(err)
	}
	loaded, err := repo.Load(ctx, "s")
	if err != nil || loaded.State.Balance != 30 || loaded.SnapshotVersion != 0 {
		t.Fatalf("with a broken snapshot: %+v %v", loaded, err)
	}
	agg.SnapshotVersion = 2 // the code changed S: version-1 snapshots are stale
	loaded, err = repo.Load(ctx, "s")
	if err != nil || loaded.State.Balance != 30 || loaded.SnapshotVersion != 0 {
		t.Fatalf("with snapshots of another version: %+v %v", loaded, err)
	}
	if _, err := repo.Execute(ctx, "s", withdraw(1000), nil); !errors.Is(err, errInsufficient) {
		t.Fatalf("a refused command: %v", err)
	}
}
