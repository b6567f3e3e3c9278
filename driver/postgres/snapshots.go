package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents/driver"
)

// SaveSnapshotTx implements driver.Snapshots.
func (d *Driver) SaveSnapshotTx(ctx context.Context, tx pgx.Tx, s *driver.Snapshot) error {
	_, err := tx.Exec(ctx, d.query(`INSERT INTO {schema}.snapshots (stream_id, version, schema_version, data, created_at)
		VALUES ($1, $2, $3, $4, clock_timestamp())
		ON CONFLICT (stream_id, version) DO UPDATE SET schema_version = excluded.schema_version, data = excluded.data, created_at = excluded.created_at`),
		s.StreamID, s.Version, s.SchemaVersion, s.Data)
	return translate(ctx, "save snapshot", err)
}

// LatestSnapshot implements driver.Snapshots.
func (d *Driver) LatestSnapshot(ctx context.Context, p *driver.LatestSnapshotParams) (*driver.Snapshot, error) {
	return d.latestSnapshot(ctx, d.pool, p)
}

// LatestSnapshotTx implements driver.Snapshots.
func (d *Driver) LatestSnapshotTx(ctx context.Context, tx pgx.Tx, p *driver.LatestSnapshotParams) (*driver.Snapshot, error) {
	return d.latestSnapshot(ctx, tx, p)
}

func (d *Driver) latestSnapshot(ctx context.Context, q querier, p *driver.LatestSnapshotParams) (*driver.Snapshot, error) {
	s := &driver.Snapshot{StreamID: p.StreamID, SchemaVersion: p.SchemaVersion}
	err := q.QueryRow(ctx, d.query(`SELECT version, data, created_at FROM {schema}.snapshots WHERE stream_id = $1 AND schema_version = $2
		ORDER BY version DESC LIMIT 1`), p.StreamID, p.SchemaVersion).Scan(&s.Version, &s.Data, &s.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(ctx, "load snapshot", err)
	}
	s.Size, s.CreatedAt = len(s.Data), s.CreatedAt.UTC()
	return s, nil
}

// ListSnapshots implements driver.Snapshots.
func (d *Driver) ListSnapshots(ctx context.Context, p *driver.ListSnapshotsParams) ([]driver.Snapshot, error) {
	rows, err := d.pool.Query(ctx, d.query(`SELECT stream_id, version, schema_version, length(data), created_at FROM {schema}.snapshots
		WHERE left(stream_id, length($1)) = $1 AND (stream_id, version) > ($2, $3)
		ORDER BY stream_id, version LIMIT $4`), p.StreamPrefix, p.AfterStream, p.AfterVersion, p.Limit)
	if err != nil {
		return nil, translate(ctx, "list snapshots", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (driver.Snapshot, error) {
		var s driver.Snapshot
		err := row.Scan(&s.StreamID, &s.Version, &s.SchemaVersion, &s.Size, &s.CreatedAt)
		s.CreatedAt = s.CreatedAt.UTC()
		return s, err
	})
	return out, translate(ctx, "list snapshots", err)
}

// PruneSnapshots implements driver.Snapshots.
func (d *Driver) PruneSnapshots(ctx context.Context, p *driver.PruneSnapshotsParams) (int64, error) {
	tag, err := d.pool.Exec(ctx, d.query(`DELETE FROM {schema}.snapshots s USING (
			SELECT stream_id, version, row_number() OVER (PARTITION BY stream_id ORDER BY version DESC) AS n
			FROM {schema}.snapshots WHERE left(stream_id, length($1)) = $1) r
		WHERE s.stream_id = r.stream_id AND s.version = r.version AND r.n > $2`), p.StreamPrefix, p.Keep)
	if err != nil {
		return 0, translate(ctx, "prune snapshots", err)
	}
	return tag.RowsAffected(), nil
}
