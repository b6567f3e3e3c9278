package tasks_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/rawtest"
	"github.com/rawevents/rawevents/tasks"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

const benchBatch = 100

// BenchmarkWork measures trivial tasks worked per second through a Client
// with the default settings: b.N tasks inserted with InsertManyTx in
// batches of benchBatch while the client works them, timed until River
// reports the last one completed (that is, stored as completed, which River
// does in batches). Use a fixed count so that start-up is amortised:
//
//	go test -run '^$' -bench Work -benchtime=5000x -count=3 ./tasks
func BenchmarkWork(b *testing.B) {
	for _, workers := range []int{tasks.DefaultMaxWorkers, 500} {
		b.Run(fmt.Sprintf("impl=sqlite/workers=%d", workers), func(b *testing.B) {
			store := rawtest.SQLite(b)
			benchWork(b, store, func(cfg *tasks.Config) (*tasks.Client[*sql.Tx], error) {
				d := store.Driver().(*sqlite.Driver)
				if _, err := tasks.MigrateSQLite(context.Background(), d); err != nil {
					return nil, err
				}
				return tasks.ForSQLite(d, cfg)
			}, workers)
		})
		b.Run(fmt.Sprintf("impl=postgres/workers=%d", workers), func(b *testing.B) {
			store := rawtest.Postgres(b)
			benchWork(b, store, func(cfg *tasks.Config) (*tasks.Client[pgx.Tx], error) {
				d := store.Driver().(*postgres.Driver)
				if _, err := tasks.MigratePostgres(context.Background(), d); err != nil {
					return nil, err
				}
				return tasks.ForPostgres(d, cfg)
			}, workers)
		})
	}
}

func benchWork[TTx any](b *testing.B, store *rawevents.Store[TTx], open func(*tasks.Config) (*tasks.Client[TTx], error), maxWorkers int) {
	ctx := context.Background()
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[noopArgs]) error { return nil }))
	client, err := open(&tasks.Config{
		Workers: workers,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}},
		Logger:  testLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	completed, unsubscribe := client.River().SubscribeConfig(&river.SubscribeConfig{
		ChanSize: 100_000,
		Kinds:    []river.EventKind{river.EventKindJobCompleted},
	})
	defer unsubscribe()
	var done atomic.Int64
	go func() {
		for range completed {
			done.Add(1)
		}
	}()
	start(b, client)

	batch := make([]river.InsertManyParams, benchBatch)
	for i := range batch {
		batch[i] = river.InsertManyParams{Args: noopArgs{}}
	}
	b.ResetTimer()
	began := time.Now()
	for inserted := 0; inserted < b.N; inserted += benchBatch {
		n := min(benchBatch, b.N-inserted)
		if err := store.Driver().InTx(ctx, func(tx TTx) error {
			_, err := client.InsertManyTx(ctx, tx, batch[:n])
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for done.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d tasks completed after 5 minutes", done.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
}
