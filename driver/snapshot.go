package driver

import (
	"context"
	"time"
)

// Snapshots stores aggregate snapshots: a cache of a stream's state at a
// version. A snapshot is never the truth; a reader that cannot use one
// replays the stream instead, and snapshots may be pruned at any time.
type Snapshots[TTx any] interface {
	// SaveSnapshotTx stores a snapshot inside tx; saving the same stream
	// and version again replaces it.
	SaveSnapshotTx(ctx context.Context, tx TTx, s *Snapshot) error
	// LatestSnapshot returns the stream's snapshot of the highest version
	// with the given schema version, or nil when there is none.
	LatestSnapshot(ctx context.Context, params *LatestSnapshotParams) (*Snapshot, error)
	// LatestSnapshotTx is LatestSnapshot inside tx.
	LatestSnapshotTx(ctx context.Context, tx TTx, params *LatestSnapshotParams) (*Snapshot, error)
	// ListSnapshots lists snapshots (without their data) by stream and
	// version.
	ListSnapshots(ctx context.Context, params *ListSnapshotsParams) ([]Snapshot, error)
	// PruneSnapshots deletes all but the Keep newest snapshots of each
	// stream whose id starts with StreamPrefix, and returns how many it
	// deleted.
	PruneSnapshots(ctx context.Context, params *PruneSnapshotsParams) (int64, error)
}

// Snapshot is a stream's state at a version, encoded by the application.
type Snapshot struct {
	StreamID string `json:"stream_id"`
	// Version is the stream version the state includes.
	Version int64 `json:"version"`
	// SchemaVersion is the snapshot format's version, chosen by the code
	// that wrote it; a reader ignores snapshots of another version.
	SchemaVersion int       `json:"schema_version"`
	Data          []byte    `json:"-"`
	Size          int       `json:"size"`
	CreatedAt     time.Time `json:"created_at"`
}

// LatestSnapshotParams select a stream's latest usable snapshot.
type LatestSnapshotParams struct {
	StreamID      string
	SchemaVersion int
}

// ListSnapshotsParams select snapshots to list.
type ListSnapshotsParams struct {
	// StreamPrefix keeps streams whose id starts with it.
	StreamPrefix string
	// AfterStream and AfterVersion page: list what sorts after them.
	AfterStream  string
	AfterVersion int64
	Limit        int
}

// PruneSnapshotsParams select snapshots to delete.
type PruneSnapshotsParams struct {
	StreamPrefix string
	// Keep is how many of the newest snapshots of each stream stay; >= 0.
	Keep int
}
