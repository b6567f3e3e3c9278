package tasks_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/rawtest"
	"github.com/rawevents/rawevents/tasks"
)

// noteArgs is the test task: it notes that it ran, and fails while its
// attempt is below FailUntil.
type noteArgs struct {
	Stream    string `json:"stream"`
	Tag       string `json:"tag"`
	FailUntil int    `json:"fail_until,omitempty"`
}

func (noteArgs) Kind() string { return "note" }

// run is one attempt of a task, as its worker saw it.
type run struct {
	attempt int
	at      time.Time
	events  int // events of the task's stream visible to the worker
}

// recorder collects the runs of noteArgs tasks, by tag.
type recorder struct {
	mu   sync.Mutex
	runs map[string][]run
}

func (r *recorder) add(tag string, rn run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runs == nil {
		r.runs = map[string][]run{}
	}
	r.runs[tag] = append(r.runs[tag], rn)
}

func (r *recorder) get(tag string) []run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]run(nil), r.runs[tag]...)
}

func (r *recorder) tags() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for tag := range r.runs {
		out = append(out, tag)
	}
	return out
}

// stepRetry retries the n-th failure of a task after n*step.
type stepRetry struct{ step time.Duration }

func (p stepRetry) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(time.Duration(len(job.Errors)+1) * p.step)
}

const retryStep = 100 * time.Millisecond

type testBundle[TTx any] struct {
	store    *rawevents.Store[TTx]
	client   *tasks.Client[TTx]
	recorder *recorder
	migrate  func(ctx context.Context) (applied []int, version int, err error)
}

// setupFunc returns a migrated store with a started client working
// noteArgs tasks.
type setupFunc[TTx any] func(t *testing.T) *testBundle[TTx]

func setupSQLite(t *testing.T) *testBundle[*sql.Tx] {
	t.Helper()
	store := rawtest.SQLite(t)
	d := store.Driver().(*sqlite.Driver)
	bundle := &testBundle[*sql.Tx]{store: store, recorder: &recorder{}}
	bundle.migrate = func(ctx context.Context) ([]int, int, error) {
		res, err := tasks.MigrateSQLite(ctx, d)
		if err != nil {
			return nil, 0, err
		}
		return res.Applied, res.Version, nil
	}
	if _, _, err := bundle.migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	client, err := tasks.ForSQLite(d, testConfig(t, store, bundle.recorder))
	if err != nil {
		t.Fatal(err)
	}
	bundle.client = client
	start(t, client)
	return bundle
}

func setupPostgres(t *testing.T) *testBundle[pgx.Tx] {
	t.Helper()
	store := rawtest.Postgres(t)
	d := store.Driver().(*postgres.Driver)
	bundle := &testBundle[pgx.Tx]{store: store, recorder: &recorder{}}
	bundle.migrate = func(ctx context.Context) ([]int, int, error) {
		res, err := tasks.MigratePostgres(ctx, d)
		if err != nil {
			return nil, 0, err
		}
		return res.Applied, res.Version, nil
	}
	if _, _, err := bundle.migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	client, err := tasks.ForPostgres(d, testConfig(t, store, bundle.recorder))
	if err != nil {
		t.Fatal(err)
	}
	bundle.client = client
	start(t, client)
	return bundle
}

// testConfig works noteArgs tasks, retrying fast and polling often so that
// retries are picked up within a test's patience.
func testConfig[TTx any](t *testing.T, store *rawevents.Store[TTx], rec *recorder) *tasks.Config {
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[noteArgs]) error {
		var events []event.Event
		if job.Args.Stream != "" {
			var err error
			if events, err = store.ReadStream(ctx, job.Args.Stream, nil); err != nil {
				return err
			}
		}
		rec.add(job.Args.Tag, run{attempt: job.Attempt, at: time.Now(), events: len(events)})
		if job.Attempt < job.Args.FailUntil {
			return fmt.Errorf("attempt %d fails on purpose", job.Attempt)
		}
		return nil
	}))
	return &tasks.Config{
		Workers:     workers,
		RetryPolicy: stepRetry{step: retryStep},
		Logger:      testLogger(),
		River: &river.Config{
			FetchCooldown:     10 * time.Millisecond,
			FetchPollInterval: 50 * time.Millisecond,
		},
	}
}

// testLogger shows River's warnings and errors. It writes to stderr, not
// to t, because River's goroutines may log after a subtest has ended.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func start[TTx any](t testing.TB, client *tasks.Client[TTx]) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := client.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	// Registered after the store's cleanup, so it runs first: the client
	// stops before the store closes.
	t.Cleanup(func() {
		defer cancel()
		stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer stopCancel()
		if err := client.Stop(stopCtx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

// waitFor polls cond until it holds, failing the test after a deadline.
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

// waitForState waits until the task with id is in state and returns it.
func waitForState[TTx any](t *testing.T, client *tasks.Client[TTx], id int64, state rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	var job *rivertype.JobRow
	waitFor(t, fmt.Sprintf("task %d to be %s", id, state), func() bool {
		var err error
		job, err = client.River().JobGet(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return job.State == state
	})
	return job
}

func placed() event.Proposed {
	return event.Proposed{Type: "order.placed", Data: json.RawMessage(`{"total":12}`)}
}

var errAbandon = errors.New("abandon the transaction")

func TestTasks(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		runSuite(t, setupSQLite)
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		runSuite(t, setupPostgres)
	})
}

func runSuite[TTx any](t *testing.T, setup setupFunc[TTx]) {
	t.Run("EnqueuedWithAppendRunsOnceAfterCommit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()

		var ids []int64
		err := b.store.Driver().InTx(ctx, func(tx TTx) error {
			if _, err := b.store.AppendTx(ctx, tx, "order-1", event.NoStream, placed()); err != nil {
				return err
			}
			one, err := b.client.InsertTx(ctx, tx, noteArgs{Stream: "order-1", Tag: "one"}, nil)
			if err != nil {
				return err
			}
			many, err := b.client.InsertManyTx(ctx, tx, []river.InsertManyParams{
				{Args: noteArgs{Stream: "order-1", Tag: "two"}},
				{Args: noteArgs{Stream: "order-1", Tag: "three"}},
			})
			if err != nil {
				return err
			}
			ids = append(ids, one.Job.ID, many[0].Job.ID, many[1].Job.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		for i, tag := range []string{"one", "two", "three"} {
			job := waitForState(t, b.client, ids[i], rivertype.JobStateCompleted)
			if job.Attempt != 1 {
				t.Errorf("%s: completed at attempt %d, want 1", tag, job.Attempt)
			}
			runs := b.recorder.get(tag)
			if len(runs) != 1 {
				t.Fatalf("%s ran %d times, want once", tag, len(runs))
			}
			if runs[0].events != 1 {
				t.Errorf("%s saw %d events of its stream, want the 1 committed with it", tag, runs[0].events)
			}
		}
	})

	t.Run("RolledBackTaskNeverRuns", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()

		var abandoned int64
		err := b.store.Driver().InTx(ctx, func(tx TTx) error {
			if _, err := b.store.AppendTx(ctx, tx, "order-2", event.NoStream, placed()); err != nil {
				return err
			}
			res, err := b.client.InsertTx(ctx, tx, noteArgs{Stream: "order-2", Tag: "abandoned"}, nil)
			if err != nil {
				return err
			}
			abandoned = res.Job.ID
			return errAbandon
		})
		if !errors.Is(err, errAbandon) {
			t.Fatalf("InTx: %v, want %v", err, errAbandon)
		}

		// Neither the events nor the task are there. (Check the id now:
		// SQLite may give it to the next task.)
		if events, err := b.store.ReadStream(ctx, "order-2", nil); err != nil || len(events) != 0 {
			t.Fatalf("stream after rollback: %d events, %v; want none", len(events), err)
		}
		if _, err := b.client.River().JobGet(ctx, abandoned); !errors.Is(err, rivertype.ErrNotFound) {
			t.Fatalf("JobGet of the rolled-back task: %v, want ErrNotFound", err)
		}

		// A task committed afterwards runs; by then a task that had been
		// committed before it would have been fetched too.
		var later int64
		err = b.store.Driver().InTx(ctx, func(tx TTx) error {
			res, err := b.client.InsertTx(ctx, tx, noteArgs{Tag: "later"}, nil)
			if err == nil {
				later = res.Job.ID
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		waitForState(t, b.client, later, rivertype.JobStateCompleted)

		list, err := b.client.River().JobList(ctx, river.NewJobListParams().Kinds(noteArgs{}.Kind()).First(100))
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Jobs) != 1 || list.Jobs[0].ID != later {
			t.Errorf("tasks in the database: %d, want only the later one", len(list.Jobs))
		}
		if tags := b.recorder.tags(); len(tags) != 1 || tags[0] != "later" {
			t.Errorf("tasks that ran: %v, want [later]", tags)
		}
	})

	t.Run("FailingTaskIsRetriedWithBackoff", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()

		var id int64
		err := b.store.Driver().InTx(ctx, func(tx TTx) error {
			res, err := b.client.InsertTx(ctx, tx, noteArgs{Tag: "flaky", FailUntil: 3}, nil)
			if err == nil {
				id = res.Job.ID
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		job := waitForState(t, b.client, id, rivertype.JobStateCompleted)
		runs := b.recorder.get("flaky")
		if len(runs) != 3 || job.Attempt != 3 {
			t.Fatalf("%d runs, completed at attempt %d; want 3 and 3", len(runs), job.Attempt)
		}
		if len(job.Errors) != 2 {
			t.Errorf("%d recorded errors, want 2", len(job.Errors))
		}
		for i := 1; i < len(runs); i++ {
			if runs[i].attempt != i+1 {
				t.Errorf("run %d was attempt %d", i+1, runs[i].attempt)
			}
			// The i-th failure waits i steps; SQLite keeps milliseconds.
			gap, want := runs[i].at.Sub(runs[i-1].at), time.Duration(i)*retryStep-5*time.Millisecond
			if gap < want {
				t.Errorf("attempt %d ran %v after the previous one, want at least %v", i+1, gap, want)
			}
		}
	})

	t.Run("MigrateIsIdempotent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		applied, version, err := b.migrate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 0 || version < 1 {
			t.Errorf("second migration applied %v and left version %d; want nothing applied at version > 0", applied, version)
		}
	})

	t.Run("UIHandlerServesJobs", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)

		var id int64
		err := b.store.Driver().InTx(ctx, func(tx TTx) error {
			res, err := b.client.InsertTx(ctx, tx, noteArgs{Tag: "shown"}, nil)
			if err == nil {
				id = res.Job.ID
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		waitForState(t, b.client, id, rivertype.JobStateCompleted)

		h, err := tasks.UIHandler(ctx, b.client, "/admin/river")
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/admin/river/", h)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)

		body := get(t, srv.URL+fmt.Sprintf("/admin/river/api/jobs/%d", id))
		var job struct {
			ID    int64  `json:"id"`
			Kind  string `json:"kind"`
			State string `json:"state"`
		}
		if err := json.Unmarshal(body, &job); err != nil {
			t.Fatalf("job: %v in %s", err, body)
		}
		if job.ID != id || job.Kind != "note" || job.State != "completed" {
			t.Errorf("job from the UI API: %+v", job)
		}
		if page := get(t, srv.URL+"/admin/river/"); !strings.Contains(string(page), "<html") {
			t.Errorf("UI page is not HTML: %.200s", page)
		}
	})
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body
}

func TestConfig(t *testing.T) {
	t.Parallel()
	store := rawtest.SQLite(t)
	d := store.Driver().(*sqlite.Driver)
	if _, err := tasks.MigrateSQLite(context.Background(), d); err != nil {
		t.Fatal(err)
	}

	t.Run("InsertOnlyClientCannotStart", func(t *testing.T) {
		t.Parallel()
		client, err := tasks.ForSQLite(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Start(context.Background()); err == nil {
			t.Error("an insert-only client started")
		}
	})

	t.Run("RejectsRiverSchema", func(t *testing.T) {
		t.Parallel()
		_, err := tasks.ForSQLite(d, &tasks.Config{River: &river.Config{Schema: "other"}})
		if err == nil || !strings.Contains(err.Error(), "Schema") {
			t.Errorf("err = %v, want one about the schema", err)
		}
	})

	t.Run("QueuesNeedWorkers", func(t *testing.T) {
		t.Parallel()
		_, err := tasks.ForSQLite(d, &tasks.Config{Queues: map[string]river.QueueConfig{"q": {MaxWorkers: 1}}})
		if err == nil || !strings.Contains(err.Error(), "Workers") {
			t.Errorf("err = %v, want one about Workers", err)
		}
	})
}

// Processes that start together migrate together: each migration must be
// applied once, and every caller must succeed.
func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	const migrators = 4
	check := func(t *testing.T, migrate func(i int) (*driver.MigrateResult, error)) {
		t.Helper()
		results := make([]*driver.MigrateResult, migrators)
		errs := make([]error, migrators)
		var wg sync.WaitGroup
		for i := range migrators {
			wg.Go(func() { results[i], errs[i] = migrate(i) })
		}
		wg.Wait()
		appliers := 0
		for i, res := range results {
			if errs[i] != nil {
				t.Fatalf("migrator %d: %v", i, errs[i])
			}
			if len(res.Applied) > 0 {
				appliers++
			}
			if res.Version != results[0].Version || res.Version < 1 {
				t.Errorf("migrator %d left version %d, migrator 0 %d", i, res.Version, results[0].Version)
			}
		}
		if appliers != 1 {
			t.Errorf("%d migrators applied migrations, want 1", appliers)
		}
	}

	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "events.db")
		drivers := make([]*sqlite.Driver, migrators) // one per process
		for i := range drivers {
			d, err := sqlite.Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			drivers[i] = d
		}
		check(t, func(i int) (*driver.MigrateResult, error) {
			return tasks.MigrateSQLite(context.Background(), drivers[i])
		})
	})

	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		pool := pgtest.Pool(t)
		d, err := postgres.New(pool, &postgres.Config{Schema: pgtest.Schema(t, pool)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		check(t, func(int) (*driver.MigrateResult, error) {
			return tasks.MigratePostgres(context.Background(), d)
		})
	})
}
