package domain_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// BenchmarkAggregateLoad loads a 100,000-event aggregate from a snapshot
// at its last version and by replaying the whole stream, and reports the
// peak heap growth during a load: replay reads the stream in pages, so it
// stays bounded however long the stream.
//
//	go test -run '^$' -bench AggregateLoad -count 3 ./domain
func BenchmarkAggregateLoad(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) { benchLoad(b, benchSQLite(b)) })
	b.Run("Postgres", func(b *testing.B) { benchLoad(b, benchPostgres(b)) })
}

func benchLoad[TTx any](b *testing.B, store *rawevents.Store[TTx]) {
	const n = 100_000
	ctx := context.Background()
	agg := accountAggregate(n) // snapshots at version 100,000 only
	agg.CacheSize = -1
	repo, err := domain.NewRepository(store, agg)
	if err != nil {
		b.Fatal(err)
	}
	deposit, err := agg.Types.Encode(Deposited{Amount: 1})
	if err != nil {
		b.Fatal(err)
	}
	page := make([]event.Proposed, 1000)
	for i := range page {
		page[i] = deposit
	}
	for v := 0; v < n-1000; v += 1000 {
		if _, err := store.Append(ctx, agg.StreamID("big"), event.Exact(int64(v)), page...); err != nil {
			b.Fatal(err)
		}
	}
	// The last thousand through the repository, which snapshots at 100,000.
	if _, err := repo.Execute(ctx, "big", func(Account) ([]any, error) {
		events := make([]any, 1000)
		for i := range events {
			events[i] = Deposited{Amount: 1}
		}
		return events, nil
	}, nil); err != nil {
		b.Fatal(err)
	}
	snap, err := store.Driver().LatestSnapshot(ctx, &driver.LatestSnapshotParams{StreamID: "account-big", SchemaVersion: 1})
	if err != nil || snap == nil || snap.Version != n {
		b.Fatalf("snapshot %+v, %v", snap, err)
	}
	for _, mode := range []string{"snapshot", "replay"} {
		b.Run(mode, func(b *testing.B) {
			var peak atomic.Uint64
			stop := sampleHeap(&peak)
			for b.Loop() {
				var loaded *domain.Loaded[Account]
				if mode == "snapshot" {
					loaded, err = repo.Load(ctx, "big")
				} else {
					loaded, err = repo.LoadFromStart(ctx, "big")
				}
				if err != nil || loaded.Version != n || loaded.State.Balance != n {
					b.Fatalf("loaded %+v, %v", loaded, err)
				}
			}
			stop()
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
		})
	}
}

// sampleHeap records the heap's peak growth over its value at the start
// until stop is called.
func sampleHeap(peak *atomic.Uint64) (stop func()) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > base && m.HeapAlloc-base > peak.Load() {
					peak.Store(m.HeapAlloc - base)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}
