package domain_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/tasks"
)

// rawJobArgs asks for one raw event to be processed: the pipeline built on
// one River job per raw event, which BenchmarkPipeline compares with.
type rawJobArgs struct {
	RawID uuid.UUID `json:"raw_id"`
}

func (rawJobArgs) Kind() string { return "process_raw" }

// rawJobWorker processes the raw event of a job in a transaction of its
// own, as the counter processor would, but without per-key order (River
// has none), so its aggregate takes counts in any order.
type rawJobWorker[TTx any] struct {
	river.WorkerDefaults[rawJobArgs]
	store  *rawevents.Store[TTx]
	router *domain.Router[TTx]
	done   *atomic.Int64
}

type Tally struct{ Key string }

func (c Tally) AggregateID() string { return c.Key }

func (w *rawJobWorker[TTx]) Work(ctx context.Context, job *river.Job[rawJobArgs]) error {
	found, err := w.store.Lookup(ctx, job.Args.RawID)
	if err != nil || len(found) != 1 {
		return fmt.Errorf("raw event %s: %v", job.Args.RawID, err)
	}
	var d seqData
	if err := domain.RawData(found[0], &d); err != nil {
		return err
	}
	if err := w.router.Execute(ctx, Tally{Key: d.Key}, &domain.ExecuteOpts{IDSeed: found[0].ID}); err != nil {
		return err
	}
	w.done.Add(1)
	return nil
}

func tallyRouter[TTx any](b *testing.B, store *rawevents.Store[TTx]) *domain.Router[TTx] {
	types := domain.NewTypes()
	must(domain.Register[Counted](types, "counted", 1))
	repo, err := domain.NewRepository(store, &domain.Aggregate[counterState]{
		Name: "tally", Types: types, SnapshotEvery: 25,
		Apply: func(s counterState, e any) counterState { return counterState{Last: s.Last + 1} },
	})
	if err != nil {
		b.Fatal(err)
	}
	router := domain.NewRouter[TTx]()
	must(domain.Route(router, repo, func(s counterState, _ Tally) ([]any, error) { return []any{Counted{Seq: s.Last + 1}}, nil }))
	return router
}

// benchRiver stores b.N raw events and one River job for each, then
// starts River (500 workers, the most that helped here) and times it
// until every job is done.
func benchRiver[TTx any](b *testing.B, store *rawevents.Store[TTx], open func(*tasks.Config) (*tasks.Client[TTx], error)) {
	ctx := context.Background()
	var done atomic.Int64
	workers := river.NewWorkers()
	river.AddWorker(workers, &rawJobWorker[TTx]{store: store, router: tallyRouter(b, store), done: &done})
	client, err := open(&tasks.Config{Workers: workers, Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 500}}})
	if err != nil {
		b.Fatal(err)
	}
	const keys = 500
	for sent := 0; sent < b.N; sent += 1000 {
		var events []event.Proposed
		var jobs []river.InsertManyParams
		for n := sent; n < min(sent+1000, b.N); n++ {
			key, seq := fmt.Sprintf("k%03d", n%keys), n/keys+1
			id := fmt.Sprintf("%s-%d", key, seq)
			envelope := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"gen","type":"seq","datacontenttype":"application/json","data":{"key":%q,"seq":%d}}`, id, key, seq)
			rawID := uuid.NewSHA1(uuid.NameSpaceOID, []byte(id))
			events = append(events, event.Proposed{ID: rawID, Type: "seq", Data: []byte(envelope)})
			jobs = append(jobs, river.InsertManyParams{Args: rawJobArgs{RawID: rawID}})
		}
		err := store.Driver().InTx(ctx, func(tx TTx) error {
			if _, err := store.AppendTx(ctx, tx, "raw:gen", event.Any, events...); err != nil {
				return err
			}
			_, err := client.InsertManyTx(ctx, tx, jobs)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for done.Load() < int64(b.N) {
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	stop, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Stop(stop); err != nil {
		b.Fatal(err)
	}
}

func benchRiverSQLite(b *testing.B) {
	store := benchSQLite(b)
	d := store.Driver().(*sqlite.Driver)
	if _, err := tasks.MigrateSQLite(context.Background(), d); err != nil {
		b.Fatal(err)
	}
	benchRiver(b, store, func(c *tasks.Config) (*tasks.Client[*sql.Tx], error) { return tasks.ForSQLite(d, c) })
}

func benchRiverPostgres(b *testing.B) {
	store := benchPostgres(b)
	d := store.Driver().(*postgres.Driver)
	if _, err := tasks.MigratePostgres(context.Background(), d); err != nil {
		b.Fatal(err)
	}
	benchRiver(b, store, func(c *tasks.Config) (*tasks.Client[pgx.Tx], error) { return tasks.ForPostgres(d, c) })
}
