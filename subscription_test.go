package rawevents_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/rawtest"
)

type sqlTx = sql.Tx

// forBoth runs a test against a fresh SQLite store and a fresh PostgreSQL
// store.
func forBoth(t *testing.T, sqliteTest func(t *testing.T), pgTest func(t *testing.T)) {
	t.Run("SQLite", func(t *testing.T) { t.Parallel(); sqliteTest(t) })
	t.Run("Postgres", func(t *testing.T) { t.Parallel(); pgTest(t) })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type numbered struct {
	N int `json:"n"`
}

// appendNumbered appends n events to each of streams, numbered 1..n per
// stream, interleaved across streams in the log.
func appendNumbered[TTx any](t *testing.T, store *rawevents.Store[TTx], streams, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		for s := range streams {
			data, _ := json.Marshal(numbered{N: i})
			if _, err := store.Append(context.Background(), fmt.Sprintf("key-%d", s), event.Exact(int64(i-1)), event.Proposed{Type: "tick", Data: data}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// echo is a handler that, for each event of stream key-k numbered n,
// appends to stream seen-k at exact version n-1: an event handled twice or
// out of order fails with a concurrency error.
func echo[TTx any](store *rawevents.Store[TTx]) func(ctx context.Context, tx TTx, e event.Event) error {
	return func(ctx context.Context, tx TTx, e event.Event) error {
		var d numbered
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		_, err := store.AppendTx(ctx, tx, "seen-"+e.StreamID[len("key-"):], event.Exact(int64(d.N-1)),
			event.Proposed{Type: "seen", Data: e.Data, Metadata: event.Metadata{CausationID: e.ID.String()}})
		return err
	}
}

func TestSubscriptionOrderAndTakeover(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T) { testOrderAndTakeover(t, rawtest.SQLite(t)) },
		func(t *testing.T) { testOrderAndTakeover(t, rawtest.Postgres(t)) })
}

// testOrderAndTakeover runs two subscribers on four partitions while
// events arrive, stops one mid-way, and checks that every event was
// handled exactly once and in order per key.
func testOrderAndTakeover[TTx any](t *testing.T, store *rawevents.Store[TTx]) {
	const streams, perStream = 20, 30
	ctx := context.Background()
	newSub := func() *rawevents.Subscriber[TTx] {
		s, err := rawevents.NewSubscriber(store, &rawevents.Subscription[TTx]{
			Name: "echo", Partitions: 4, BatchSize: 7, PageSize: 50, Lease: time.Second,
			Filter: func(e event.Event) bool { return e.Type == "tick" },
			Handle: echo(store), MaxAttempts: 1, Strict: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctxA, stopA := context.WithCancel(ctx)
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, c := range []context.Context{ctxA, ctxB} {
		wg.Go(func() { errs <- newSub().Run(c) })
	}
	appendNumbered(t, store, streams, perStream/2)
	stopA()
	for i := perStream/2 + 1; i <= perStream; i++ {
		for s := range streams {
			data, _ := json.Marshal(numbered{N: i})
			if _, err := store.Append(ctx, fmt.Sprintf("key-%d", s), event.Any, event.Proposed{Type: "tick", Data: data}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "every event handled", func() bool {
		for s := range streams {
			info, err := store.StreamInfo(ctx, fmt.Sprintf("seen-%d", s))
			if err != nil || info.Version < perStream {
				return false
			}
		}
		st, err := store.SubscriptionStatus(ctx, "echo")
		return err == nil && st.Lag == 0 // past its own writes too
	})
	stopB()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("subscriber: %v", err)
		}
	}
	for s := range streams {
		seen, err := store.ReadStream(ctx, fmt.Sprintf("seen-%d", s), &rawevents.ReadStreamOpts{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != perStream {
			t.Fatalf("stream key-%d: %d events handled, want %d", s, len(seen), perStream)
		}
	}
	st, err := store.SubscriptionStatus(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if st.Parked != 0 || len(st.Partitions) != 4 || st.Lag != 0 || st.State != rawevents.SubscriptionStopped {
		t.Fatalf("status %+v", st)
	}
	for _, p := range st.Partitions {
		if p.Owner != "" {
			t.Fatalf("partition %d still owned by %s after both stopped", p.Partition, p.Owner)
		}
	}
}

func TestSubscriptionPoison(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T) { testPoison(t, rawtest.SQLite(t)) },
		func(t *testing.T) { testPoison(t, rawtest.Postgres(t)) })
}

// testPoison: a handler that fails for one key parks that key's event
// after MaxAttempts while the other keys complete; an operator's retry
// after the fix succeeds, a skip is recorded, and both are audited.
func testPoison[TTx any](t *testing.T, store *rawevents.Store[TTx]) {
	ctx := context.Background()
	var fixed atomic.Bool
	var attempts atomic.Int32
	handle := echo(store)
	sub, err := rawevents.NewSubscriber(store, &rawevents.Subscription[TTx]{
		Name: "poison", Partitions: 2, MaxAttempts: 3, Lease: time.Second,
		Backoff: func(int) time.Duration { return time.Millisecond },
		Handle: func(ctx context.Context, tx TTx, e event.Event) error {
			if e.StreamID == "key-3" && !fixed.Load() {
				attempts.Add(1)
				return errors.New("cannot handle key-3")
			}
			return handle(ctx, tx, e)
		},
		Filter: func(e event.Event) bool { return e.Type == "tick" },
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	appendNumbered(t, store, 5, 1)
	waitFor(t, "the log handled", func() bool {
		st, err := store.SubscriptionStatus(ctx, "poison")
		return err == nil && st.Lag == 0 && st.Parked == 1 && st.State == rawevents.SubscriptionLive
	})
	if n := attempts.Load(); n != 3 {
		t.Fatalf("the poison event was tried %d times, want MaxAttempts = 3", n)
	}
	for _, s := range []int{0, 1, 2, 4} {
		if _, err := store.StreamInfo(ctx, fmt.Sprintf("seen-%d", s)); err != nil {
			t.Fatalf("key-%d was not handled: %v", s, err)
		}
	}
	parked, err := store.Parked(ctx, "poison", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].StreamID != "key-3" || parked[0].Attempts != 3 || parked[0].Error != "cannot handle key-3" {
		t.Fatalf("parked: %+v", parked)
	}
	if err := store.RetryParked(ctx, "poison", parked[0].Position, nil); !errors.Is(err, event.ErrInvalidEvent) {
		t.Fatalf("a retry without an actor: %v", err)
	}
	if err := store.SkipParked(ctx, "poison", 999, &rawevents.ParkedDecision{Actor: "ops"}); !errors.Is(err, event.ErrParkedNotFound) {
		t.Fatalf("skipping an event that is not parked: %v", err)
	}
	fixed.Store(true)
	if err := store.RetryParked(ctx, "poison", parked[0].Position, &rawevents.ParkedDecision{Actor: "ops", Reason: "handler fixed"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retry", func() bool {
		_, err := store.StreamInfo(ctx, "seen-3")
		return err == nil
	})
	resolved, err := store.Parked(ctx, "poison", &rawevents.ParkedOpts{States: []string{driver.ParkedResolved}})
	if err != nil || len(resolved) != 1 || resolved[0].Attempts != 4 {
		t.Fatalf("resolved: %+v %v", resolved, err)
	}
	audit, err := store.ReadStream(ctx, rawevents.ParkedStream("poison"), nil)
	if err != nil || len(audit) != 1 || audit[0].Type != rawevents.ParkedRetryRequested || audit[0].Metadata.Actor != "ops" {
		t.Fatalf("audit trail: %+v %v", audit, err)
	}
}

func TestSubscriptionStrict(t *testing.T) {
	t.Parallel()
	store := rawtest.SQLite(t)
	appendNumbered(t, store, 1, 1)
	sub, err := rawevents.NewSubscriber(store, &rawevents.Subscription[*sqlTx]{
		Name: "strict", MaxAttempts: 2, Strict: true, Backoff: func(int) time.Duration { return time.Millisecond },
		Handle: func(context.Context, *sqlTx, event.Event) error { return errors.New("no") },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.Run(ctx); !errors.Is(err, rawevents.ErrStrictStop) {
		t.Fatalf("run: %v, want ErrStrictStop", err)
	}
	st, err := store.SubscriptionStatus(context.Background(), "strict")
	if err != nil || st.Position != 0 || st.Parked != 0 {
		t.Fatalf("a strict stop moved on: %+v %v", st, err)
	}
}

func TestSubscriptionConfig(t *testing.T) {
	t.Parallel()
	store := rawtest.SQLite(t)
	_, err := rawevents.NewSubscriber(store, &rawevents.Subscription[*sqlTx]{Partitions: -1})
	if err == nil {
		t.Fatal("a subscription without name or handler was accepted")
	}
	for _, want := range []string{"Name", "Handle", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestSubscriptionWholeBatches(t *testing.T) {
	t.Parallel()
	forBoth(t, func(t *testing.T) { testWholeBatches(t, rawtest.SQLite(t)) },
		func(t *testing.T) { testWholeBatches(t, rawtest.Postgres(t)) })
}

// testWholeBatches: catching up, a partition whose share of a page does
// not fill a batch takes the next page's events into it, so that every
// batch but a partition's last one is whole; keys stay in order.
func testWholeBatches[TTx any](t *testing.T, store *rawevents.Store[TTx]) {
	const streams, perStream, batch = 6, 50, 20
	ctx := context.Background()
	appendNumbered(t, store, streams, perStream)
	var (
		mu    sync.Mutex
		sizes = map[int][]int{} // batch sizes by the partition of their first event
		last  = map[string]int{}
		bad   []string
	)
	s, err := rawevents.NewSubscriber(store, &rawevents.Subscription[TTx]{
		Name: "batches", Partitions: 3, BatchSize: batch, PageSize: 25,
		Handle: func(context.Context, TTx, event.Event) error { return errors.New("want HandleBatch") },
		HandleBatch: func(_ context.Context, _ TTx, events []event.Event) error {
			mu.Lock()
			defer mu.Unlock()
			p := rawevents.PartitionOf(events[0].StreamID, 3)
			sizes[p] = append(sizes[p], len(events))
			for _, e := range events {
				var d numbered
				if err := json.Unmarshal(e.Data, &d); err != nil {
					return err
				}
				if rawevents.PartitionOf(e.StreamID, 3) != p || d.N != last[e.StreamID]+1 {
					bad = append(bad, fmt.Sprintf("%s #%d after #%d in partition %d", e.StreamID, d.N, last[e.StreamID], p))
				}
				last[e.StreamID] = d.N
			}
			return nil
		},
		MaxAttempts: 1, Strict: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.ReachedHead() {
		t.Fatal("ReachedHead before Run")
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	waitFor(t, "every event handled", func() bool {
		st, err := store.SubscriptionStatus(ctx, "batches")
		return err == nil && st.Lag == 0
	})
	waitFor(t, "every partition read the log to its head", s.ReachedHead)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("out of order: %v", bad)
	}
	total := 0
	for p, ss := range sizes {
		for i, n := range ss {
			total += n
			if n != batch && i != len(ss)-1 {
				t.Errorf("partition %d: batch sizes %v: only the last may be short", p, ss)
				break
			}
		}
	}
	if total != streams*perStream {
		t.Fatalf("%d events handled, want %d", total, streams*perStream)
	}
}

// TestSubscriptionSharesAtOnce: on PostgreSQL a subscriber that joins gets
// its share of the partitions within moments, and one that stops hands
// them over as fast, not at the others' next lease renewal (every 20 s
// here): Claim and Release notify every process's subscribers.
func TestSubscriptionSharesAtOnce(t *testing.T) {
	t.Parallel()
	store := rawtest.Postgres(t)
	ctx := context.Background()
	run := func(owner string) (stop func()) {
		s, err := rawevents.NewSubscriber(store, &rawevents.Subscription[pgx.Tx]{
			Name: "share", Partitions: 4, Lease: time.Minute, Owner: owner,
			Handle: func(context.Context, pgx.Tx, event.Event) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(runCtx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", owner, err)
			}
		}
	}
	owned := func(want map[string]int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			st, err := store.SubscriptionStatus(ctx, "share")
			got := map[string]int{}
			if err == nil {
				for _, p := range st.Partitions {
					got[p.Owner]++
				}
			}
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("partitions by owner %v (%v), want %v within %s", got, err, want, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stopA := run("a")
	defer stopA()
	owned(map[string]int{"a": 4}, 10*time.Second)
	stopB := run("b")
	owned(map[string]int{"a": 2, "b": 2}, 5*time.Second)
	stopB()
	owned(map[string]int{"a": 4}, 5*time.Second)
}
