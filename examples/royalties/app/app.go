// Package app is the royalties application as "rawevents serve" runs it:
// the processor in the worker role, the read models in the projector
// role.
package app

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/examples/royalties"
	"github.com/rawevents/rawevents/internal/cli"
)

// New returns the royalties application.
func New() *cli.App {
	return &cli.App{
		SQLite:      subscriptions[*sql.Tx],
		Postgres:    subscriptions[pgx.Tx],
		Projections: royalties.Projections(),
	}
}

// subscriptions are the worker role's: the royalties processor, its raw
// events split by track into 8 partitions.
func subscriptions[TTx any](_ context.Context, store *rawevents.Store[TTx]) ([]*rawevents.Subscription[TTx], error) {
	processor, _, err := royalties.Setup(store)
	if err != nil {
		return nil, err
	}
	sub, err := processor.Subscription(&rawevents.Subscription[TTx]{Partitions: 8})
	if err != nil {
		return nil, err
	}
	return []*rawevents.Subscription[TTx]{sub}, nil
}
