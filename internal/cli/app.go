package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/tasks"
)

// App is an application that "rawevents serve" runs besides the API: its
// subscriptions (processors), its task workers and its projections. Each function is called once
// the store is open, with the store typed for its backend; a nil function
// means the app does not run on that backend. Write the setup once as a
// generic function and give it for both:
//
//	app := &cli.App{SQLite: setup[*sql.Tx], Postgres: setup[pgx.Tx]}
type App struct {
	SQLite   func(ctx context.Context, store *rawevents.Store[*sql.Tx]) ([]*rawevents.Subscription[*sql.Tx], error)
	Postgres func(ctx context.Context, store *rawevents.Store[pgx.Tx]) ([]*rawevents.Subscription[pgx.Tx], error)
	// Tasks registers the app's task workers (see package tasks); the
	// worker role works them. Nil works none.
	Tasks func(workers *river.Workers) error
	// Projections are the app's read models: the projector role keeps
	// them up to date, the API serves them under /v1/read. The app's
	// subscriptions are their upstream stage: a query's wait_for waits
	// for them first.
	Projections []*projection.Projection
	// AutoRebuild rebuilds, and swaps in, a projection whose version
	// changed; without it the projection waits for "rawevents projections
	// rebuild".
	AutoRebuild bool
	// BulkIndexFrom is projection.Options.BulkIndexFrom for the app's read
	// models: from how long a log a new generation is written with its key
	// only and gets its other indexes once caught up. 0 means that
	// option's default; negative, never.
	BulkIndexFrom int64
	// Backfills are the app's backfills from sources written in Go (see
	// package backfill), which "backfill NAME" runs besides those of the
	// config file.
	Backfills []*backfill.Backfill
}

// taskQueue is a tasks.Client with its transaction type hidden.
type taskQueue struct {
	start, stop func(context.Context) error
	ui          func(ctx context.Context, prefix string) (http.Handler, error)
	// insert enqueues a task outside any transaction of the caller's.
	insert func(ctx context.Context, args river.JobArgs) (*rivertype.JobInsertResult, error)
}

// openTasks returns the store's task queue: insert-only without workers.
func openTasks(store Store, config *tasks.Config) (*taskQueue, error) {
	switch s := store.(type) {
	case *rawevents.Store[*sql.Tx]:
		d, ok := s.Driver().(*sqlite.Driver)
		if !ok {
			break
		}
		return queueOf(tasks.ForSQLite(d, config))
	case *rawevents.Store[pgx.Tx]:
		d, ok := s.Driver().(*postgres.Driver)
		if !ok {
			break
		}
		return queueOf(tasks.ForPostgres(d, config))
	}
	return nil, fmt.Errorf("tasks: no task queue for %T", store)
}

func queueOf[TTx any](c *tasks.Client[TTx], err error) (*taskQueue, error) {
	if err != nil {
		return nil, err
	}
	return &taskQueue{
		start: c.Start, stop: c.Stop,
		ui: func(ctx context.Context, prefix string) (http.Handler, error) { return tasks.UIHandler(ctx, c, prefix) },
		insert: func(ctx context.Context, args river.JobArgs) (*rivertype.JobInsertResult, error) {
			return c.River().Insert(ctx, args, nil)
		},
	}, nil
}

// Roles a serve process can take.
const (
	RoleAPI       = "api"
	RoleWorker    = "worker"
	RoleProjector = "projector"
)

var allRoles = []string{RoleAPI, RoleWorker, RoleProjector}

// parseRoles reads a comma-separated role list.
func parseRoles(list []string) ([]string, error) {
	var roles []string
	for _, item := range list {
		for r := range strings.SplitSeq(item, ",") {
			r = strings.TrimSpace(r)
			if !slices.Contains(allRoles, r) {
				return nil, fmt.Errorf("--roles: %q is not a role (want %s)", r, strings.Join(allRoles, ", "))
			}
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("--roles: name at least one role")
	}
	return roles, nil
}

// workers runs the app's subscriptions on store until ctx ends.
type workers struct {
	wg    sync.WaitGroup
	names []string
	// local are the subscriptions this process runs, by name.
	local map[string]projection.Positioner
	mu    sync.Mutex
	errs  []error
}

// run runs fn in a goroutine, keeping its error under name.
func (w *workers) run(name string, logger *slog.Logger, fn func() error) {
	w.wg.Go(func() {
		if err := fn(); err != nil {
			logger.Error("stopped", "part", name, "err", err)
			w.mu.Lock()
			w.errs = append(w.errs, fmt.Errorf("%s: %w", name, err))
			w.mu.Unlock()
		}
	})
}

// startWorkers builds the app's subscriptions for store's backend and runs
// each in a goroutine, and starts the task workers: the app's, and the one
// of backfill tasks when there are backfills.
func startWorkers(ctx context.Context, app *App, store Store, backfills []*backfill.Backfill, logger *slog.Logger) (*workers, error) {
	w := &workers{local: map[string]projection.Positioner{}}
	if err := startTasks(ctx, w, app, store, backfills, logger); err != nil {
		return nil, err
	}
	if app == nil {
		return w, nil
	}
	switch s := store.(type) {
	case *rawevents.Store[*sql.Tx]:
		return w, runSubscriptions(ctx, w, s, app.SQLite, logger)
	case *rawevents.Store[pgx.Tx]:
		return w, runSubscriptions(ctx, w, s, app.Postgres, logger)
	}
	return nil, fmt.Errorf("workers: no backend for %T", store)
}

// startTasks starts a task queue client that works the app's tasks and
// the backfill tasks (backfill.Args) of backfills, if there are any; it
// stops when ctx ends.
func startTasks(ctx context.Context, w *workers, app *App, store Store, backfills []*backfill.Backfill, logger *slog.Logger) error {
	registered := river.NewWorkers()
	var names []string
	if app != nil && app.Tasks != nil {
		if err := app.Tasks(registered); err != nil {
			return fmt.Errorf("tasks: %w", err)
		}
		names = append(names, "tasks")
	}
	var in *ingest.Ingester
	if len(backfills) > 0 {
		// Backfill pages go through an ingester of their own: one
		// committer, the pages' items stored as one transaction each.
		in = ingest.New(store, &ingest.Config{Committers: 1})
		runner, err := backfill.NewRunner(&backfill.Config{Store: store, Ingester: in, Backfills: backfills})
		if err == nil {
			err = river.AddWorkerSafely(registered, backfill.NewWorker(runner, nil))
		}
		if err != nil {
			in.Close()
			return fmt.Errorf("backfill tasks: %w", err)
		}
		names = append(names, "backfill tasks")
	}
	if len(names) == 0 {
		return nil
	}
	closeIngester := func() {
		if in != nil {
			in.Close()
		}
	}
	queue, err := openTasks(store, &tasks.Config{Workers: registered, Logger: logger})
	if err == nil {
		err = queue.start(ctx)
	}
	if err != nil {
		closeIngester()
		return err
	}
	w.names = append(w.names, names...)
	w.wg.Go(func() {
		<-ctx.Done()
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := queue.stop(stop); err != nil {
			logger.Error("stop tasks", "err", err)
		}
		closeIngester()
	})
	return nil
}

func runSubscriptions[TTx any](ctx context.Context, w *workers, store *rawevents.Store[TTx],
	setup func(context.Context, *rawevents.Store[TTx]) ([]*rawevents.Subscription[TTx], error), logger *slog.Logger,
) error {
	if setup == nil {
		return nil
	}
	subs, err := setup(ctx, store)
	if err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	var runners []*rawevents.Subscriber[TTx]
	for _, sub := range subs {
		if sub.Logger == nil {
			sub.Logger = logger
		}
		s, err := rawevents.NewSubscriber(store, sub)
		if err != nil {
			return fmt.Errorf("workers: %w", err)
		}
		runners = append(runners, s)
		w.local[sub.Name] = s
	}
	for i, s := range runners {
		name := subs[i].Name
		w.names = append(w.names, name)
		w.run("subscription "+name, logger, func() error { return s.Run(ctx) })
	}
	return nil
}

// wait waits for every subscription to stop and returns their errors.
func (w *workers) wait() error {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return errors.Join(w.errs...)
}
