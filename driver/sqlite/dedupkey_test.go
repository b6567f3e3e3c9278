package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"

	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/storetest"
)

// TestMigrationKeysStoredRawEvents: migration 3 keys the raw events that
// schema 2 stored (storetest.TestKeyMigration).
func TestMigrationKeysStoredRawEvents(t *testing.T) {
	t.Parallel()
	d, _ := newDriver(t)
	storetest.TestKeyMigration(t, storetest.KeyMigration[*sql.Tx]{
		Driver: d, Version: 3,
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
				if _, err := d.DB().ExecContext(ctx, `INSERT INTO events (position, event_id, stream_id, stream_version, type,
					schema_version, data, metadata, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					e.Position, e.ID.String(), e.StreamID, e.StreamVersion, e.Type, e.SchemaVersion, string(e.Data), string(meta),
					e.OccurredAt.UnixMicro(), e.RecordedAt.UnixMicro()); err != nil {
					return err
				}
				if _, err := d.DB().ExecContext(ctx, `INSERT INTO streams (stream_id, version, last_position, created_at, updated_at)
					VALUES (?, ?, ?, 0, 0) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position`,
					e.StreamID, e.StreamVersion, e.Position); err != nil {
					return err
				}
			}
			return nil
		},
		Update: func(ctx context.Context) error {
			_, err := d.DB().ExecContext(ctx, `UPDATE events SET type = 'changed' WHERE position = 1`)
			return err
		},
	})
}
