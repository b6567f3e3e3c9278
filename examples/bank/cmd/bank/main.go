// Command bank is the rawevents binary with the bank application in it:
// "bank serve" runs the HTTP API, in its worker role the bank's processor
// and the tasks it leads to, and in its projector role the accounts read
// model that the API serves under /v1/read/accounts. Every other rawevents command works
// as it does in rawevents.
package main

import (
	"context"
	"database/sql"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/examples/bank"
	"github.com/rawevents/rawevents/internal/cli"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/tasks"
)

func main() {
	os.Exit(cli.MainApp(os.Args[1:], &cli.App{
		SQLite: func(_ context.Context, store *rawevents.Store[*sql.Tx]) ([]*rawevents.Subscription[*sql.Tx], error) {
			queue, err := tasks.ForSQLite(store.Driver().(*sqlite.Driver), nil)
			if err != nil {
				return nil, err
			}
			return subscriptions(store, queue)
		},
		Postgres: func(_ context.Context, store *rawevents.Store[pgx.Tx]) ([]*rawevents.Subscription[pgx.Tx], error) {
			queue, err := tasks.ForPostgres(store.Driver().(*postgres.Driver), nil)
			if err != nil {
				return nil, err
			}
			return subscriptions(store, queue)
		},
		Tasks: func(workers *river.Workers) error {
			return river.AddWorkerSafely(workers, river.WorkFunc(sendNotice))
		},
		Projections: []*projection.Projection{bank.Accounts()},
	}))
}

// subscriptions are what the worker role runs: the bank's processor, its
// raw events split by account into 8 partitions, and a subscription that
// enqueues a notice for each settlement in the transaction that moves its
// checkpoint (the outbox), so no settlement goes without its notice.
func subscriptions[TTx any](store *rawevents.Store[TTx], queue *tasks.Client[TTx]) ([]*rawevents.Subscription[TTx], error) {
	processor, _, err := bank.Setup(store)
	if err != nil {
		return nil, err
	}
	sub, err := processor.Subscription(&rawevents.Subscription[TTx]{Partitions: 8})
	if err != nil {
		return nil, err
	}
	notices := &rawevents.Subscription[TTx]{
		Name:   "settlement-notices",
		Filter: func(e event.Event) bool { return e.Type == "bank.settled" },
		Handle: func(ctx context.Context, tx TTx, e event.Event) error {
			_, err := queue.InsertTx(ctx, tx, NoticeArgs{Stream: e.StreamID, Version: e.StreamVersion}, nil)
			return err
		},
	}
	return []*rawevents.Subscription[TTx]{sub, notices}, nil
}

// NoticeArgs asks for the owner of an account to be told of a settlement:
// the event at Version of Stream.
type NoticeArgs struct {
	Stream  string `json:"stream"`
	Version int64  `json:"version"`
}

// Kind is the task's stored name.
func (NoticeArgs) Kind() string { return "settlement_notice" }

// sendNotice stands for a mail or a push message. A task runs at least
// once, so a real one passes an idempotency key (Stream and Version) to
// whatever it calls.
func sendNotice(_ context.Context, job *river.Job[NoticeArgs]) error {
	slog.Info("settlement notice sent", "stream", job.Args.Stream, "version", job.Args.Version)
	return nil
}
