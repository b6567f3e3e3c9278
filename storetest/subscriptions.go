package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// The behaviours of driver.Subscriptions: partitions under leases, fenced
// checkpoints, parked events.

func claim[TTx any](t *testing.T, h *Harness[TTx], owner string, partitions int, lease time.Duration) []int {
	t.Helper()
	claims, err := h.Store.Driver().Claim(context.Background(), &driver.ClaimParams{Subscription: "sub", Partitions: partitions, Owner: owner, Lease: lease})
	if err != nil {
		t.Fatalf("claim by %s: %v", owner, err)
	}
	var parts []int
	for _, c := range claims {
		parts = append(parts, c.Partition)
	}
	return parts
}

func testClaimFairShare[TTx any](t *testing.T, h *Harness[TTx]) {
	const lease = time.Minute
	if got := claim(t, h, "a", 4, lease); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("a alone claimed %v, want all 4", got)
	}
	if got := claim(t, h, "b", 4, lease); len(got) != 0 {
		t.Fatalf("b claimed %v while a's leases are live", got)
	}
	if got := claim(t, h, "a", 4, lease); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("a renewed %v with b present, want its share [0 1]", got)
	}
	if got := claim(t, h, "b", 4, lease); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("b claimed %v, want the partitions a gave up [2 3]", got)
	}
	if got := claim(t, h, "b", 4, lease); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("b renewed %v, want [2 3]", got)
	}
	ctx := context.Background()
	if err := h.Store.Driver().Release(ctx, &driver.ReleaseParams{Subscription: "sub", Owner: "b"}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, h, "a", 4, lease); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("a claimed %v after b left, want all 4", got)
	}
	if err := h.Store.Driver().Release(ctx, &driver.ReleaseParams{Subscription: "sub", Owner: "a", Partitions: []int{3}}); err != nil {
		t.Fatal(err)
	}
	st, err := h.Store.Driver().SubscriptionStatus(ctx, "sub")
	if err != nil {
		t.Fatal(err)
	}
	owners := make([]string, len(st.Partitions))
	for i, p := range st.Partitions {
		owners[i] = p.Owner
	}
	if !slices.Equal(owners, []string{"a", "a", "a", ""}) {
		t.Fatalf("owners after releasing partition 3: %q", owners)
	}
}

func testClaimExpiredLease[TTx any](t *testing.T, h *Harness[TTx]) {
	claim(t, h, "a", 2, 50*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := claim(t, h, "b", 2, time.Minute)
		if slices.Equal(got, []int{0, 1}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b holds %v long after a's lease ended", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := claim(t, h, "a", 2, time.Minute); len(got) != 0 {
		t.Fatalf("a came back and took %v from b's live leases", got)
	}
}

func testCheckpointFencing[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx := context.Background()
	d := h.Store.Driver()
	claim(t, h, "a", 1, 50*time.Millisecond)
	checkpoint := func(owner string, position int64) error {
		tx, err := h.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Store.AppendTx(ctx, tx, "work-"+owner, event.Any, event.Proposed{Type: "done"}); err != nil {
			t.Fatal(err)
		}
		err = d.CheckpointTx(ctx, tx, &driver.CheckpointParams{Subscription: "sub", Partition: 0, Owner: owner, Position: position, Lease: time.Minute})
		if err != nil {
			if rbErr := h.Rollback(ctx, tx); rbErr != nil {
				t.Fatal(rbErr)
			}
			return err
		}
		return h.Commit(ctx, tx)
	}
	if err := checkpoint("a", 5); err != nil {
		t.Fatalf("owner's checkpoint: %v", err)
	}
	if err := checkpoint("nobody", 6); !errors.Is(err, event.ErrLeaseLost) {
		t.Fatalf("a non-owner's checkpoint: %v, want ErrLeaseLost", err)
	}
	// a's checkpoint renewed its lease for a minute: b cannot take over.
	if got := claim(t, h, "b", 1, time.Minute); len(got) != 0 {
		t.Fatalf("b took %v while a's renewed lease is live", got)
	}
	if err := d.Release(ctx, &driver.ReleaseParams{Subscription: "sub", Owner: "a"}); err != nil {
		t.Fatal(err)
	}
	claims, err := d.Claim(ctx, &driver.ClaimParams{Subscription: "sub", Partitions: 1, Owner: "b", Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 1 || claims[0].Position != 5 {
		t.Fatalf("b's claim %+v, want partition 0 at checkpoint 5", claims)
	}
	if err := checkpoint("a", 9); !errors.Is(err, event.ErrLeaseLost) {
		t.Fatalf("the old owner's checkpoint: %v, want ErrLeaseLost", err)
	}
	if info, err := h.Store.StreamInfo(ctx, "work-a"); err != nil || info.Version != 1 {
		t.Fatalf("a's fenced batches left writes: %+v %v", info, err)
	}
	if _, err := h.Store.StreamInfo(ctx, "work-nobody"); !errors.Is(err, event.ErrStreamNotFound) {
		t.Fatalf("a fenced batch left writes: %v", err)
	}
	if err := checkpoint("b", 7); err != nil {
		t.Fatalf("new owner's checkpoint: %v", err)
	}
	st, err := d.SubscriptionStatus(ctx, "sub")
	if err != nil {
		t.Fatal(err)
	}
	if st.Partitions[0].Position != 7 || st.Partitions[0].Owner != "b" || st.Head < 2 {
		t.Fatalf("status %+v", st)
	}
}

func testClaimPartitionsChanged[TTx any](t *testing.T, h *Harness[TTx]) {
	claim(t, h, "a", 4, time.Minute)
	_, err := h.Store.Driver().Claim(context.Background(), &driver.ClaimParams{Subscription: "sub", Partitions: 8, Owner: "a", Lease: time.Minute})
	if !errors.Is(err, event.ErrPartitionsChanged) {
		t.Fatalf("claim with another partition count: %v, want ErrPartitionsChanged", err)
	}
	if _, err := h.Store.Driver().SubscriptionStatus(context.Background(), "other"); !errors.Is(err, event.ErrSubscriptionNotFound) {
		t.Fatalf("status of an unknown subscription: %v", err)
	}
	names, err := h.Store.Driver().Subscriptions(context.Background())
	if err != nil || !slices.Equal(names, []string{"sub"}) {
		t.Fatalf("subscriptions: %q %v", names, err)
	}
}

func testParking[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx := context.Background()
	d := h.Store.Driver()
	claim(t, h, "a", 2, time.Minute)
	inTx := func(fn func(tx TTx) error) error {
		tx, err := h.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := fn(tx); err != nil {
			if rbErr := h.Rollback(ctx, tx); rbErr != nil {
				t.Fatal(rbErr)
			}
			return err
		}
		return h.Commit(ctx, tx)
	}
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for i, pos := range []int64{3, 7, 9} {
		err := inTx(func(tx TTx) error {
			return d.ParkTx(ctx, tx, &driver.ParkParams{Subscription: "sub", Partition: i % 2, Position: pos, EventID: ids[i],
				StreamID: "s", Type: "t", Attempts: 5, Error: "boom"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	list := func(p driver.ParkedParams) []int64 {
		t.Helper()
		p.Subscription, p.Limit = "sub", 100
		got, err := d.Parked(ctx, &p)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, e := range got {
			out = append(out, e.Position)
		}
		return out
	}
	all, err := d.Parked(ctx, &driver.ParkedParams{Subscription: "sub", Partition: -1, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].EventID != ids[0] || all[0].Attempts != 5 || all[0].Error != "boom" || all[0].State != driver.ParkedWaiting || all[0].ParkedAt.IsZero() {
		t.Fatalf("parked: %+v", all)
	}
	if got := list(driver.ParkedParams{Partition: 0}); !slices.Equal(got, []int64{3, 9}) {
		t.Fatalf("partition 0: %v", got)
	}
	if got := list(driver.ParkedParams{Partition: -1, After: 3}); !slices.Equal(got, []int64{7, 9}) {
		t.Fatalf("after 3: %v", got)
	}
	set := func(pos int64, from []string, to string) error {
		return inTx(func(tx TTx) error {
			return d.SetParkedStateTx(ctx, tx, &driver.SetParkedStateParams{Subscription: "sub", Position: pos, From: from, To: to, Error: "again", AddAttempts: 1})
		})
	}
	if err := set(7, []string{driver.ParkedWaiting}, driver.ParkedRetrying); err != nil {
		t.Fatal(err)
	}
	if err := set(7, []string{driver.ParkedWaiting}, driver.ParkedSkipped); !errors.Is(err, event.ErrParkedNotFound) {
		t.Fatalf("skipping an event that is being retried: %v", err)
	}
	if err := set(8, []string{driver.ParkedWaiting}, driver.ParkedSkipped); !errors.Is(err, event.ErrParkedNotFound) {
		t.Fatalf("skipping an event that is not parked: %v", err)
	}
	if err := set(9, []string{driver.ParkedWaiting}, driver.ParkedSkipped); err != nil {
		t.Fatal(err)
	}
	if got := list(driver.ParkedParams{Partition: -1, States: []string{driver.ParkedRetrying}}); !slices.Equal(got, []int64{7}) {
		t.Fatalf("retrying: %v", got)
	}
	st, err := d.SubscriptionStatus(ctx, "sub")
	if err != nil {
		t.Fatal(err)
	}
	if st.Parked != 2 {
		t.Fatalf("status counts %d parked, want 2 (one waiting, one retrying)", st.Parked)
	}
	// Parking again (the retry failed) updates the record.
	err = inTx(func(tx TTx) error {
		return d.ParkTx(ctx, tx, &driver.ParkParams{Subscription: "sub", Partition: 1, Position: 7, EventID: ids[1], StreamID: "s", Type: "t", Attempts: 1, Error: "still"})
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Parked(ctx, &driver.ParkedParams{Subscription: "sub", Partition: -1, After: 6, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].State != driver.ParkedWaiting || got[0].Attempts != 7 || got[0].Error != "still" {
		t.Fatalf("parked again: %+v", got)
	}
}

func testReadStreamTx[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx := context.Background()
	tx, err := h.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.AppendTx(ctx, tx, "s", event.NoStream, event.Proposed{Type: "a"}, event.Proposed{Type: "b"}); err != nil {
		t.Fatal(err)
	}
	inside, err := h.Store.Driver().ReadStreamTx(ctx, tx, &driver.ReadStreamParams{StreamID: "s", From: 1, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Rollback(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if len(inside) != 2 || inside[1].Type != "b" {
		t.Fatalf("inside the transaction: %+v", inside)
	}
	if after, err := h.Store.ReadStream(ctx, "s", nil); err != nil || len(after) != 0 {
		t.Fatalf("after rollback: %d events, %v", len(after), err)
	}
}
