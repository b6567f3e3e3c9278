package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rawevents/rawevents/driver"
)

// SaveSnapshotTx implements driver.Snapshots. Like the SQL drivers, whose
// column is NOT NULL, it refuses nil Data (empty Data is fine).
func (d *Driver) SaveSnapshotTx(ctx context.Context, tx *Tx, s *driver.Snapshot) error {
	return d.withTx(ctx, "save snapshot", tx, func(v view) error {
		if s.Data == nil {
			return fmt.Errorf("memory: save snapshot %s@%d: Data is nil", s.StreamID, s.Version)
		}
		v.w.snapshots.put(s.StreamID, s.Version, driver.Snapshot{StreamID: s.StreamID, Version: s.Version,
			SchemaVersion: s.SchemaVersion, Data: bytes.Clone(s.Data), Size: len(s.Data), CreatedAt: now()})
		return nil
	})
}

// LatestSnapshot implements driver.Snapshots.
func (d *Driver) LatestSnapshot(ctx context.Context, p *driver.LatestSnapshotParams) (*driver.Snapshot, error) {
	var out *driver.Snapshot
	err := d.read(ctx, "load snapshot", func(s *state) error {
		out = view{s: s}.latestSnapshot(p)
		return nil
	})
	return out, err
}

// LatestSnapshotTx implements driver.Snapshots.
func (d *Driver) LatestSnapshotTx(ctx context.Context, tx *Tx, p *driver.LatestSnapshotParams) (*driver.Snapshot, error) {
	var out *driver.Snapshot
	err := d.withTx(ctx, "load snapshot", tx, func(v view) error {
		out = v.latestSnapshot(p)
		return nil
	})
	return out, err
}

func (v view) latestSnapshot(p *driver.LatestSnapshotParams) *driver.Snapshot {
	var best *driver.Snapshot
	consider := func(row driver.Snapshot) {
		if row.SchemaVersion == p.SchemaVersion && (best == nil || row.Version > best.Version) {
			best = &row
		}
	}
	for version, row := range v.s.snapshots[p.StreamID] {
		if v.w != nil {
			if _, replaced := v.w.snapshots.get(p.StreamID, version); replaced {
				continue
			}
		}
		consider(row)
	}
	if v.w != nil {
		for _, row := range v.w.snapshots[p.StreamID] {
			consider(row)
		}
	}
	if best == nil {
		return nil
	}
	best.Data = bytes.Clone(best.Data)
	return best
}

// ListSnapshots implements driver.Snapshots. Streams are in byte order.
func (d *Driver) ListSnapshots(ctx context.Context, p *driver.ListSnapshotsParams) ([]driver.Snapshot, error) {
	var out []driver.Snapshot
	err := d.read(ctx, "list snapshots", func(s *state) error {
		for id, rows := range s.snapshots {
			if !strings.HasPrefix(id, p.StreamPrefix) || id < p.AfterStream {
				continue
			}
			for _, row := range rows {
				if id > p.AfterStream || row.Version > p.AfterVersion {
					row.Data = nil
					out = append(out, row)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b driver.Snapshot) int {
		return cmp.Or(strings.Compare(a.StreamID, b.StreamID), cmp.Compare(a.Version, b.Version))
	})
	if p.Limit >= 0 && len(out) > p.Limit {
		out = out[:p.Limit]
	}
	return out, nil
}

// PruneSnapshots implements driver.Snapshots.
func (d *Driver) PruneSnapshots(ctx context.Context, p *driver.PruneSnapshotsParams) (int64, error) {
	var deleted int64
	err := d.exclusive(ctx, "prune snapshots", func(s *state) error {
		for id, rows := range s.snapshots {
			if !strings.HasPrefix(id, p.StreamPrefix) {
				continue
			}
			versions := slices.Sorted(maps.Keys(rows))
			for _, version := range versions[:max(len(versions)-max(p.Keep, 0), 0)] {
				delete(rows, version)
				deleted++
			}
			if len(rows) == 0 {
				delete(s.snapshots, id)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}
