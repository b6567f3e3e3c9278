package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/rawtest"
	"github.com/rawevents/rawevents/tasks"
)

// fastRetry retries a failed task 10 ms later.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(10 * time.Millisecond) }

// queue is a started River client working backfill tasks with runner's
// backfills, with the transaction type hidden.
type queue struct {
	insert func(ctx context.Context, args river.JobArgs) (*rivertype.JobInsertResult, error)
	get    func(ctx context.Context, id int64) (*rivertype.JobRow, error)
}

func startQueue[TTx any](t *testing.T, client *tasks.Client[TTx], err error) *queue {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := client.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer cancel()
		stop, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer stopCancel()
		if err := client.Stop(stop); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return &queue{
		insert: func(ctx context.Context, args river.JobArgs) (*rivertype.JobInsertResult, error) {
			return client.River().Insert(ctx, args, nil)
		},
		get: client.River().JobGet,
	}
}

func (q *queue) waitFor(t *testing.T, id int64, state rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		job, err := q.get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if job.State == state {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %d is %s after 30s, want %s (errors %v)", id, job.State, state, job.Errors)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func taskConfig(runner *backfill.Runner, slice time.Duration) *tasks.Config {
	workers := river.NewWorkers()
	river.AddWorker(workers, backfill.NewWorker(runner, &backfill.WorkerConfig{Slice: slice}))
	return &tasks.Config{
		Workers: workers, RetryPolicy: fastRetry{},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		River:  &river.Config{FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 20 * time.Millisecond},
	}
}

type workerSetup func(t *testing.T, bs ...*backfill.Backfill) (backfill.Reader, *queue)

func sqliteWorker(slice time.Duration) workerSetup {
	return func(t *testing.T, bs ...*backfill.Backfill) (backfill.Reader, *queue) {
		b := setup(t)
		runner := b.runner(t, bs...)
		client, err := tasks.ForSQLite(b.store.Driver().(*sqlite.Driver), taskConfig(runner, slice))
		return b.store, startQueue(t, client, err)
	}
}

func postgresWorker(slice time.Duration) workerSetup {
	return func(t *testing.T, bs ...*backfill.Backfill) (backfill.Reader, *queue) {
		store := rawtest.Postgres(t)
		in := ingest.New(store, nil)
		t.Cleanup(in.Close)
		runner, err := backfill.NewRunner(&backfill.Config{Store: store, Ingester: in, Backfills: bs})
		if err != nil {
			t.Fatal(err)
		}
		client, err := tasks.ForPostgres(store.Driver().(*postgres.Driver), taskConfig(runner, slice))
		return store, startQueue(t, client, err)
	}
}

func TestWorker(t *testing.T) {
	t.Parallel()
	for name, setupWorker := range map[string]func(time.Duration) workerSetup{"SQLite": sqliteWorker, "Postgres": postgresWorker} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			t.Run("WorksInSlicesToTheEnd", func(t *testing.T) {
				t.Parallel()
				src := &pager{items: items(50), size: 10}
				store, q := setupWorker(time.Nanosecond)(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "things"})
				res, err := q.insert(t.Context(), backfill.Args{Name: "things"})
				if err != nil {
					t.Fatal(err)
				}
				job := q.waitFor(t, res.Job.ID, rivertype.JobStateCompleted)
				p, err := backfill.Status(t.Context(), store, "things")
				if err != nil {
					t.Fatal(err)
				}
				// A one-nanosecond slice ends after every page: each page
				// is an attempt of its own, snoozed to the next.
				if p.State != backfill.StateCompleted || p.Items != 50 || p.Duplicates != 0 || p.Runs != 5 || job.Attempt != 1 {
					t.Errorf("progress %+v after attempt %d", p, job.Attempt)
				}
				if n := len(rawIDs(t, store, "things")); n != 50 {
					t.Errorf("%d raw events, want 50", n)
				}
				events, err := store.ReadStream(t.Context(), backfill.Stream("things"), nil)
				if err != nil {
					t.Fatal(err)
				}
				if actor := events[0].Metadata.Actor; actor != fmt.Sprintf("river:rawevents.backfill:%d", res.Job.ID) {
					t.Errorf("actor %q", actor)
				}
			})

			t.Run("RetriesAfterASourceError", func(t *testing.T) {
				t.Parallel()
				src := &pager{items: items(30), size: 10}
				failed := false
				src.setFail(func(cursor string) error {
					if cursor == "20" && !failed {
						failed = true
						return errors.New("connection reset")
					}
					return nil
				})
				store, q := setupWorker(time.Hour)(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "things"})
				res, err := q.insert(t.Context(), backfill.Args{Name: "things"})
				if err != nil {
					t.Fatal(err)
				}
				job := q.waitFor(t, res.Job.ID, rivertype.JobStateCompleted)
				if job.Attempt != 2 || len(job.Errors) != 1 || !strings.Contains(job.Errors[0].Error, "connection reset") {
					t.Errorf("attempt %d, errors %v; want a second attempt after the error", job.Attempt, job.Errors)
				}
				if got, want := strings.Join(src.asked(), ","), ",10,20,20"; got != want {
					t.Errorf("cursors asked %s, want %s: the retry resumes at the cursor", got, want)
				}
				if n := len(rawIDs(t, store, "things")); n != 30 {
					t.Errorf("%d raw events, want 30", n)
				}
			})

			t.Run("CancelsOnAnInvalidItem", func(t *testing.T) {
				t.Parallel()
				its := items(10)
				its[4].ID = ""
				_, q := setupWorker(time.Hour)(t, &backfill.Backfill{Name: "things", Source: &pager{items: its, size: 10}, EventSource: "things"})
				res, err := q.insert(t.Context(), backfill.Args{Name: "things"})
				if err != nil {
					t.Fatal(err)
				}
				job := q.waitFor(t, res.Job.ID, rivertype.JobStateCancelled)
				if job.Attempt != 1 || len(job.Errors) != 1 || !strings.Contains(job.Errors[0].Error, "item 4") {
					t.Errorf("attempt %d, errors %v; want one attempt, cancelled on item 4", job.Attempt, job.Errors)
				}
			})

			t.Run("CompletedAndRestart", func(t *testing.T) {
				t.Parallel()
				src := &pager{items: items(10), size: 10}
				store, q := setupWorker(time.Hour)(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "things"})
				for _, args := range []backfill.Args{{Name: "things"}, {Name: "things"}, {Name: "things", Restart: true}} {
					res, err := q.insert(t.Context(), args)
					if err != nil {
						t.Fatal(err)
					}
					q.waitFor(t, res.Job.ID, rivertype.JobStateCompleted)
				}
				p, err := backfill.Status(t.Context(), store, "things")
				if err != nil {
					t.Fatal(err)
				}
				if p.Runs != 2 || p.Duplicates != 10 || p.Stored != 0 {
					t.Errorf("progress %+v, want a second pass (the second task found it complete)", p)
				}
			})
		})
	}
}

func TestArgsAreUniqueWhileWaiting(t *testing.T) {
	t.Parallel()
	store := rawtest.SQLite(t)
	client, err := tasks.ForSQLite(store.Driver().(*sqlite.Driver), nil) // insert-only: nothing works them
	if err != nil {
		t.Fatal(err)
	}
	first, err := client.River().Insert(t.Context(), backfill.Args{Name: "things"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.River().Insert(t.Context(), backfill.Args{Name: "things"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := client.River().Insert(t.Context(), backfill.Args{Name: "others"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !second.UniqueSkippedAsDuplicate || second.Job.ID != first.Job.ID || other.UniqueSkippedAsDuplicate {
		t.Errorf("second insert %+v, other %+v: want the first task back, and another backfill's task apart", second, other)
	}
}
