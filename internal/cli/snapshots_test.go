package cli

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rawevents/rawevents/driver"
)

// seedSnapshots saves snapshots of order-1 (versions 1 to 3), order-2
// (version 1) and user-1 (versions 1 and 2).
func (b *testBundle) seedSnapshots(t *testing.T) {
	t.Helper()
	store := b.openSQLite(t)
	defer store.Close()
	d := store.Driver()
	err := d.InTx(t.Context(), func(tx *sql.Tx) error {
		for _, s := range []driver.Snapshot{
			{StreamID: "order-1", Version: 1}, {StreamID: "order-1", Version: 2}, {StreamID: "order-1", Version: 3},
			{StreamID: "order-2", Version: 1},
			{StreamID: "user-1", Version: 1}, {StreamID: "user-1", Version: 2},
		} {
			s.SchemaVersion, s.Data = 1, []byte(`{"state":"x"}`)
			if err := d.SaveSnapshotTx(t.Context(), tx, &s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func parseSnapshots(t *testing.T, out string) []string {
	t.Helper()
	got := []string{}
	for line := range strings.Lines(out) {
		var s driver.Snapshot
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if s.Size != len(`{"state":"x"}`) || s.SchemaVersion != 1 || s.CreatedAt.IsZero() {
			t.Errorf("snapshot %+v", s)
		}
		got = append(got, fmt.Sprintf("%s@%d", s.StreamID, s.Version))
	}
	return got
}

func TestSnapshots(t *testing.T) {
	t.Parallel()

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedSnapshots(t)

		got := lines(b.run(t, "snapshots", "list"))
		if len(got) != 7 || got[0] != "STREAM   VERSION  SCHEMA  BYTES  CREATED" {
			t.Fatalf("snapshots list printed %q", got)
		}
		if f := strings.Fields(got[1]); len(f) != 5 || f[0] != "order-1" || f[1] != "1" || f[2] != "1" || f[3] != "13" {
			t.Errorf("row 1 = %q", got[1])
		}
		for _, tt := range []struct {
			args []string
			want []string
		}{
			{nil, []string{"order-1@1", "order-1@2", "order-1@3", "order-2@1", "user-1@1", "user-1@2"}},
			{[]string{"--prefix", "order-"}, []string{"order-1@1", "order-1@2", "order-1@3", "order-2@1"}},
			{[]string{"--limit", "2"}, []string{"order-1@1", "order-1@2"}},
			{[]string{"--prefix", "user-", "--limit", "5"}, []string{"user-1@1", "user-1@2"}},
			{[]string{"--prefix", "nobody"}, []string{}},
		} {
			got := parseSnapshots(t, b.run(t, append([]string{"snapshots", "list", "--json"}, tt.args...)...))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("snapshots list %v = %v, want %v", tt.args, got, tt.want)
			}
		}
	})

	t.Run("Prune", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedSnapshots(t)

		if out := b.run(t, "snapshots", "prune", "--keep", "1", "--prefix", "order-"); out != "deleted 2 snapshot(s), kept the newest 1 of each stream\n" {
			t.Errorf("prune printed %q", out)
		}
		want := []string{"order-1@3", "order-2@1", "user-1@1", "user-1@2"}
		if got := parseSnapshots(t, b.run(t, "snapshots", "list", "--json")); !reflect.DeepEqual(got, want) {
			t.Errorf("after pruning order-*: %v, want %v", got, want)
		}
		var pruned PruneOutput
		if err := json.Unmarshal([]byte(b.run(t, "snapshots", "prune", "--json", "--keep", "0")), &pruned); err != nil || pruned.Deleted != 4 {
			t.Errorf("prune --keep 0 --json: %+v, %v", pruned, err)
		}
		if out := b.run(t, "snapshots", "list"); out != "" {
			t.Errorf("list after pruning everything printed %q", out)
		}
	})

	t.Run("BadInputChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedSnapshots(t)
		before := b.run(t, "snapshots", "list", "--json")
		for _, tt := range []struct {
			args    []string
			wantErr string
		}{
			{[]string{"snapshots", "prune", "--keep", "-1"}, "--keep is required and must not be negative"},
			{[]string{"snapshots", "prune"}, "--keep is required"},
			{[]string{"snapshots", "prune", "--keep", "all"}, `invalid argument "all" for "--keep"`},
			{[]string{"snapshots", "list", "--limit", "-3"}, "--limit must not be negative"},
			{[]string{"snapshots", "drop"}, `unknown command "drop" for "rawevents snapshots"`},
		} {
			res := b.execute(t.Context(), "", tt.args...)
			if res.err == nil || !strings.Contains(res.err.Error(), tt.wantErr) {
				t.Errorf("%v: error = %v, want it to contain %q", tt.args, res.err, tt.wantErr)
			}
			if res.stdout != "" {
				t.Errorf("%v printed %q", tt.args, res.stdout)
			}
		}
		if after := b.run(t, "snapshots", "list", "--json"); after != before {
			t.Errorf("the snapshots changed:\n before %s\n after  %s", before, after)
		}
	})
}
