package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/storetest"
)

type testBundle struct {
	pool   *pgxpool.Pool
	driver *postgres.Driver
	store  *rawevents.Store[pgx.Tx]
	schema string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	schema := pgtest.Schema(t, pool)
	d, err := postgres.New(pool, &postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{pool: pool, driver: d, store: store, schema: schema}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) *storetest.Harness[pgx.Tx] {
		b := setup(t)
		return &storetest.Harness[pgx.Tx]{
			Store:        b.store,
			Begin:        func(ctx context.Context) (pgx.Tx, error) { return b.pool.Begin(ctx) },
			Commit:       func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
			Rollback:     func(ctx context.Context, tx pgx.Tx) error { return tx.Rollback(ctx) },
			ConcurrentTx: true,
			Exec: func(ctx context.Context, query string) error {
				_, err := b.pool.Exec(ctx, strings.ReplaceAll(query, "{events}", b.schema+".events"))
				return err
			},
		}
	})
}

func TestSchemaVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	schema := pgtest.Schema(t, pool)
	d, err := postgres.New(pool, &postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	if _, err := rawevents.NewStore(ctx, d, nil); !errors.Is(err, event.ErrSchemaOutdated) {
		t.Fatalf("new store on an empty schema: err = %v, want ErrSchemaOutdated", err)
	}
	res, err := d.Migrate(ctx)
	if err != nil || len(res.Applied) == 0 {
		t.Fatalf("migrate: %+v, %v", res, err)
	}
	again, err := d.Migrate(ctx)
	if err != nil || len(again.Applied) != 0 || again.Version != res.Version {
		t.Fatalf("second migrate applied %v (err %v), want nothing", again.Applied, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO `+schema+`.rawevents_migrations (version, name) VALUES (999, 'future')`); err != nil {
		t.Fatal(err)
	}
	if _, err := rawevents.NewStore(ctx, d, nil); !errors.Is(err, event.ErrSchemaTooNew) {
		t.Fatalf("newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	if _, err := d.Migrate(ctx); !errors.Is(err, event.ErrSchemaTooNew) {
		t.Fatalf("migrate on a newer schema: err = %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, schema := range []string{"Upper", "semi;colon", "1starts_with_digit", strings.Repeat("s", 49)} {
		if _, err := postgres.New(nil, &postgres.Config{Schema: schema}); err == nil {
			t.Errorf("schema %q accepted", schema)
		}
	}
	if _, err := postgres.Open(context.Background(), "postgres://127.0.0.1:1/none?schema=Bad-Name", nil); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("a bad schema in the URL: err = %v", err)
	}
}

// TestAppendCommitsSynchronously checks invariant 1 on a session that
// turned synchronous commit off: the append turns it back on for its
// transaction, unless the driver was configured with AsyncCommit.
func TestAppendCommitsSynchronously(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		async bool
		want  string
	}{{false, "on"}, {true, "off"}} {
		b := setup(t)
		d, err := postgres.New(b.pool, &postgres.Config{Schema: b.schema, AsyncCommit: tt.async})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		store, err := rawevents.NewStore(ctx, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, write := range txWrites {
			if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				t.Fatal(err)
			}
			if err := write(ctx, store, tx); err != nil {
				t.Fatal(err)
			}
			var got string
			if err := tx.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("AsyncCommit %v: %s's transaction commits with synchronous_commit %s, want %s", tt.async, name, got, tt.want)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// txWrites are the ways to append inside a caller's transaction.
var txWrites = map[string]func(ctx context.Context, store *rawevents.Store[pgx.Tx], tx pgx.Tx) error{
	"AppendTx": func(ctx context.Context, store *rawevents.Store[pgx.Tx], tx pgx.Tx) error {
		_, err := store.AppendTx(ctx, tx, "s", event.Any, event.Proposed{Type: "t"})
		return err
	},
	"AppendManyTx": func(ctx context.Context, store *rawevents.Store[pgx.Tx], tx pgx.Tx) error {
		_, err := store.AppendManyTx(ctx, tx, []rawevents.StreamAppend{
			{StreamID: "s", Expected: event.Any, Events: []event.Proposed{{Type: "t"}}},
			{StreamID: "r", Expected: event.Any, Events: []event.Proposed{{Type: "t"}}},
		})
		return err
	},
}

// TestAppendTxNotifies checks that an append inside a caller's
// transaction wakes the readers of other processes when that transaction
// commits: the driver cannot see the commit, so it notifies inside it.
func TestAppendTxNotifies(t *testing.T) {
	t.Parallel()
	for name, write := range txWrites {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b := setup(t)
			listener, err := pgx.ConnectConfig(ctx, b.pool.Config().ConnConfig.Copy())
			if err != nil {
				t.Fatal(err)
			}
			defer listener.Close(context.Background())
			if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{"rawevents_" + b.schema}.Sanitize()); err != nil {
				t.Fatal(err)
			}
			tx, err := b.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
			if err := write(ctx, b.store, tx); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := listener.WaitForNotification(ctx); err != nil {
				t.Fatalf("no notification after the commit: %v", err)
			}
		})
	}
}
