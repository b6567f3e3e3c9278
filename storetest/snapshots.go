package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/rawevents/rawevents/driver"
)

func testSnapshots[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx := context.Background()
	d := h.Store.Driver()
	save := func(stream string, version int64, schema int, data string) {
		t.Helper()
		tx, err := h.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.SaveSnapshotTx(ctx, tx, &driver.Snapshot{StreamID: stream, Version: version, SchemaVersion: schema, Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
		if err := h.Commit(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	save("acct-1", 10, 1, `{"v":10}`)
	save("acct-1", 20, 1, `{"v":20}`)
	save("acct-1", 30, 2, `{"v":30,"new":true}`)
	save("acct-1", 20, 1, "\x00binary\xff") // replaces
	save("acct-2", 5, 1, `{}`)
	save("other-1", 5, 1, `{}`)

	latest, err := d.LatestSnapshot(ctx, &driver.LatestSnapshotParams{StreamID: "acct-1", SchemaVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	if latest == nil || latest.Version != 20 || string(latest.Data) != "\x00binary\xff" || latest.CreatedAt.IsZero() {
		t.Fatalf("latest of schema 1: %+v", latest)
	}
	if s, err := d.LatestSnapshot(ctx, &driver.LatestSnapshotParams{StreamID: "acct-1", SchemaVersion: 2}); err != nil || s == nil || s.Version != 30 {
		t.Fatalf("latest of schema 2: %+v %v", s, err)
	}
	if s, err := d.LatestSnapshot(ctx, &driver.LatestSnapshotParams{StreamID: "acct-9", SchemaVersion: 1}); err != nil || s != nil {
		t.Fatalf("a stream without snapshots: %+v %v", s, err)
	}

	list := func(p driver.ListSnapshotsParams) string {
		t.Helper()
		p.Limit = max(p.Limit, 100)
		got, err := d.ListSnapshots(ctx, &p)
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, s := range got {
			out += fmt.Sprintf("%s@%d ", s.StreamID, s.Version)
		}
		return out
	}
	if got := list(driver.ListSnapshotsParams{StreamPrefix: "acct-"}); got != "acct-1@10 acct-1@20 acct-1@30 acct-2@5 " {
		t.Fatalf("list: %q", got)
	}
	if got := list(driver.ListSnapshotsParams{StreamPrefix: "acct-", AfterStream: "acct-1", AfterVersion: 20}); got != "acct-1@30 acct-2@5 " {
		t.Fatalf("list after acct-1@20: %q", got)
	}
	n, err := d.PruneSnapshots(ctx, &driver.PruneSnapshotsParams{StreamPrefix: "acct-", Keep: 1})
	if err != nil || n != 2 {
		t.Fatalf("prune deleted %d, %v; want 2", n, err)
	}
	if got := list(driver.ListSnapshotsParams{}); got != "acct-1@30 acct-2@5 other-1@5 " {
		t.Fatalf("after prune: %q", got)
	}
}
