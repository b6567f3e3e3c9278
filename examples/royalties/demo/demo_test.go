package demo_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/examples/royalties"
	"github.com/rawevents/rawevents/examples/royalties/demo"
	"github.com/rawevents/rawevents/examples/royalties/platform"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/rawtest"
)

// TestDemoHeadless runs the demo's whole pipeline at a small size (the
// platform's history backfilled over its API, live usage by signed
// webhooks, duplicates between the two on purpose) and checks every
// holder's earnings against those computed from the generated raw data;
// run again, it carries on: nothing is stored or derived twice.
func TestDemoHeadless(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "demo")
	cfg := demo.Config{Dir: dir, Seed: 3, Months: 3, Tracks: 30, Addr: "127.0.0.1:0", Headless: true}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := demo.Run(ctx, cfg, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "backfill platform completed") {
		t.Fatalf("output:\n%s", out.String())
	}
	data := platform.Generate(platform.Config{Seed: 3, Months: 3, Tracks: 30}.WithDefaults())
	first := check(t, dir, data)

	// Again: the backfill is complete, the live deliveries were all sent.
	out.Reset()
	if err := demo.Run(ctx, cfg, &out); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "backfill platform is complete") {
		t.Fatalf("second run output:\n%s", out.String())
	}
	if again := check(t, dir, data); again != first {
		t.Fatalf("the second run changed the log: %d events, then %d", first, again)
	}

	// A demo directory keeps its size; another is refused.
	if err := demo.Run(ctx, demo.Config{Dir: dir, Seed: 4, Addr: "127.0.0.1:0", Headless: true}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--fresh") {
		t.Fatalf("another seed in the same directory: %v", err)
	}
}

// check compares the earnings read model with the platform's own
// figures and returns the log's length.
func check(t *testing.T, dir string, data *platform.Data) int64 {
	t.Helper()
	ctx := context.Background()
	log := rawtest.SQLiteFile(t, filepath.Join(dir, "royalties.db"))
	read := rawtest.SQLiteFile(t, filepath.Join(dir, "royalties.read.db"))
	p, err := projection.New(log, read, nil, royalties.Projections()...)
	if err != nil {
		t.Fatal(err)
	}
	want := platform.Expected(data)
	got := map[platform.EarningsKey]int64{}
	cursor := ""
	for {
		page, err := p.List(ctx, "earnings", "earnings", &projection.Query{Limit: projection.MaxLimit, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Rows {
			if a := r["amount"].(int64); a != 0 {
				got[platform.EarningsKey{Holder: r["holder"].(string), Month: r["month"].(string), Platform: r["platform"].(string)}] = a
			}
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Errorf("%d earnings rows, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("earnings %+v = %d, want %d", k, got[k], v)
		}
	}
	head, err := log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := log.ReadStream(ctx, "raw:https://platform.example", &rawevents.ReadStreamOpts{Limit: rawevents.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, it := range data.Items {
		ids[it.ID()] = true
	}
	if len(raw) != len(ids) {
		t.Errorf("%d raw events, want one per item id: %d", len(raw), len(ids))
	}
	return head
}
