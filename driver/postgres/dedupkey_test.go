package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/storetest"
)

// TestMigrationKeysStoredRawEvents: migration 5 keys the raw events that
// schema 4 stored (storetest.TestKeyMigration).
func TestMigrationKeysStoredRawEvents(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	schema := pgtest.Schema(t, pool)
	d, err := postgres.New(pool, &postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	q := pgx.Identifier{schema}.Sanitize()
	storetest.TestKeyMigration(t, storetest.KeyMigration[pgx.Tx]{
		Driver: d, Version: 5,
		MigrateTo: func(ctx context.Context, version int) error {
			_, err := d.MigrateTo(ctx, version)
			return err
		},
		Insert: func(ctx context.Context, events []event.Event) error {
			for _, e := range events {
				meta, err := json.Marshal(e.Metadata)
				if err != nil {
					return err
				}
				if _, err := pool.Exec(ctx, `INSERT INTO `+q+`.events (position, event_id, stream_id, stream_version, type,
					schema_version, data, metadata, occurred_at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
					e.Position, e.ID, e.StreamID, e.StreamVersion, e.Type, e.SchemaVersion, string(e.Data), string(meta),
					e.OccurredAt, e.RecordedAt); err != nil {
					return err
				}
				if _, err := pool.Exec(ctx, `INSERT INTO `+q+`.streams (stream_id, version, last_position, created_at, updated_at)
					VALUES ($1, $2, $3, now(), now()) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position`,
					e.StreamID, e.StreamVersion, e.Position); err != nil {
					return err
				}
			}
			_, err := pool.Exec(ctx, `SELECT setval($1, $2)`, schema+".events_position_seq", len(events))
			return err
		},
		Update: func(ctx context.Context) error {
			_, err := pool.Exec(ctx, `UPDATE `+q+`.events SET type = 'changed' WHERE position = 1`)
			return err
		},
	})
}
