package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/rawevents/rawevents/driver"
)

// SaveSnapshotTx implements driver.Snapshots.
func (d *Driver) SaveSnapshotTx(ctx context.Context, tx *sql.Tx, s *driver.Snapshot) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO snapshots (stream_id, version, schema_version, data, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (stream_id, version) DO UPDATE SET schema_version = excluded.schema_version, data = excluded.data, created_at = excluded.created_at`,
		s.StreamID, s.Version, s.SchemaVersion, s.Data, time.Now().UnixMicro())
	return translate(ctx, "save snapshot", err)
}

// LatestSnapshot implements driver.Snapshots.
func (d *Driver) LatestSnapshot(ctx context.Context, p *driver.LatestSnapshotParams) (*driver.Snapshot, error) {
	return latestSnapshot(ctx, d.read, p)
}

// LatestSnapshotTx implements driver.Snapshots.
func (d *Driver) LatestSnapshotTx(ctx context.Context, tx *sql.Tx, p *driver.LatestSnapshotParams) (*driver.Snapshot, error) {
	return latestSnapshot(ctx, tx, p)
}

func latestSnapshot(ctx context.Context, q querier, p *driver.LatestSnapshotParams) (*driver.Snapshot, error) {
	s := &driver.Snapshot{StreamID: p.StreamID, SchemaVersion: p.SchemaVersion}
	var created int64
	err := q.QueryRowContext(ctx, `SELECT version, data, created_at FROM snapshots WHERE stream_id = ? AND schema_version = ?
		ORDER BY version DESC LIMIT 1`, p.StreamID, p.SchemaVersion).Scan(&s.Version, &s.Data, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(ctx, "load snapshot", err)
	}
	s.Size, s.CreatedAt = len(s.Data), fromMicros(created)
	return s, nil
}

// ListSnapshots implements driver.Snapshots.
func (d *Driver) ListSnapshots(ctx context.Context, p *driver.ListSnapshotsParams) ([]driver.Snapshot, error) {
	rows, err := d.read.QueryContext(ctx, `SELECT stream_id, version, schema_version, length(data), created_at FROM snapshots
		WHERE substr(stream_id, 1, length(?)) = ? AND (stream_id > ? OR (stream_id = ? AND version > ?))
		ORDER BY stream_id, version LIMIT ?`,
		p.StreamPrefix, p.StreamPrefix, p.AfterStream, p.AfterStream, p.AfterVersion, p.Limit)
	if err != nil {
		return nil, translate(ctx, "list snapshots", err)
	}
	defer rows.Close()
	var out []driver.Snapshot
	for rows.Next() {
		var s driver.Snapshot
		var created int64
		if err := rows.Scan(&s.StreamID, &s.Version, &s.SchemaVersion, &s.Size, &created); err != nil {
			return nil, translate(ctx, "list snapshots", err)
		}
		s.CreatedAt = fromMicros(created)
		out = append(out, s)
	}
	return out, translate(ctx, "list snapshots", rows.Err())
}

// PruneSnapshots implements driver.Snapshots.
func (d *Driver) PruneSnapshots(ctx context.Context, p *driver.PruneSnapshotsParams) (int64, error) {
	res, err := d.write.ExecContext(ctx, `DELETE FROM snapshots WHERE (stream_id, version) IN (
		SELECT stream_id, version FROM (
			SELECT stream_id, version, row_number() OVER (PARTITION BY stream_id ORDER BY version DESC) AS n
			FROM snapshots WHERE substr(stream_id, 1, length(?)) = ?)
		WHERE n > ?)`, p.StreamPrefix, p.StreamPrefix, p.Keep)
	if err != nil {
		return 0, translate(ctx, "prune snapshots", err)
	}
	n, err := res.RowsAffected()
	return n, translate(ctx, "prune snapshots", err)
}
