package royalties_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/examples/royalties"
	"github.com/rawevents/rawevents/examples/royalties/platform"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/rawtest"
)

// TestPipeline runs the application's pipeline on a small generated
// platform: every history item and every live delivery (duplicates and
// resends included) is ingested as a raw event, the processor turns them
// into domain events, the projections into read models; the earnings
// must equal those computed independently from the raw data, and both
// backends must build the same read models.
func TestPipeline(t *testing.T) {
	t.Parallel()
	data := platform.Generate(platform.Config{Seed: 7, Months: 4, Tracks: 40, Holders: 12})
	want := platform.Expected(data)
	if len(want) == 0 {
		t.Fatal("the generated platform earns nothing: a test that cannot fail")
	}
	var mu sync.Mutex
	sums := map[string]map[string]string{}
	for _, backend := range []string{"SQLite", "PostgreSQL"} {
		t.Run(backend, func(t *testing.T) {
			var got map[string]string
			if backend == "SQLite" {
				log := rawtest.SQLite(t)
				got = runPipeline(t, log, rawtest.SQLiteFile(t, filepath.Join(t.TempDir(), "read.db")), data, want)
			} else {
				log := rawtest.Postgres(t)
				got = runPipeline[pgx.Tx](t, log, log, data, want)
			}
			mu.Lock()
			sums[backend] = got
			mu.Unlock()
		})
	}
	if len(sums) == 2 {
		for name, sum := range sums["SQLite"] {
			if sums["PostgreSQL"][name] != sum {
				t.Errorf("read model %s differs between SQLite and PostgreSQL", name)
			}
		}
	}
}

var _ = (*sql.Tx)(nil)

// runPipeline ingests data, waits for the read models and checks them; it
// returns each read model's checksum.
func runPipeline[TTx any](t *testing.T, log, read *rawevents.Store[TTx], data *platform.Data, want map[platform.EarningsKey]int64) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	processor, _, err := royalties.Setup(log)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := processor.Subscription(&rawevents.Subscription[TTx]{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	worker, err := rawevents.NewSubscriber(log, sub)
	if err != nil {
		t.Fatal(err)
	}
	projector, err := projection.New(log, read, &projection.Options{Upstream: []projection.Positioner{worker}}, royalties.Projections()...)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { worker.Run(runCtx) })    //nolint:errcheck // ends with runCtx
	wg.Go(func() { projector.Run(runCtx) }) //nolint:errcheck // ends with runCtx
	defer func() { stop(); wg.Wait() }()

	// History as a backfill sends it, then the live deliveries in the
	// order the platform posts them (resends of history included).
	items := data.History()
	for _, i := range data.Outbox {
		items = append(items, data.Items[i])
	}
	in := ingest.New(log, nil)
	defer in.Close()
	var last int64
	for chunk := range slices.Chunk(items, 500) {
		raws := make([]ingest.Raw, len(chunk))
		for i, it := range chunk {
			e := ce.New()
			e.SetID(it.ID())
			e.SetSource("streamfy")
			e.SetType(it.Type())
			if err := e.SetData("application/json", []byte(it.JSON())); err != nil {
				t.Fatal(err)
			}
			raws[i] = ingest.Raw{Event: e, Transport: ingest.Transport{Mode: "structured"}}
		}
		results, err := in.Ingest(ctx, raws)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			last = max(last, r.Position)
		}
	}
	for _, name := range []string{"earnings", "unmatched", "disputes", "catalog"} {
		if err := projector.WaitFor(ctx, name, last, 2*time.Minute); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	got := map[platform.EarningsKey]int64{}
	cursor := ""
	for {
		page, err := projector.List(ctx, "earnings", "earnings", &projection.Query{Limit: projection.MaxLimit, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Rows {
			if amount := r["amount"].(int64); amount != 0 {
				got[platform.EarningsKey{Holder: r["holder"].(string), Month: r["month"].(string), Platform: r["platform"].(string)}] = amount
			}
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("earnings %+v = %d, want %d", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("earnings %+v = %d, want none", k, v)
		}
	}

	disputes, err := projector.List(ctx, "disputes", "dispute", &projection.Query{Limit: projection.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var claims []string
	for _, r := range disputes.Rows {
		claims = append(claims, r["claim"].(string))
	}
	slices.Sort(claims)
	wantDisputed := slices.Sorted(slices.Values(data.Anomalies.Disputed))
	if !slices.Equal(claims, wantDisputed) {
		t.Errorf("disputes %v, want %v", claims, wantDisputed)
	}
	unmatched, err := projector.List(ctx, "unmatched", "usage", &projection.Query{Limit: projection.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(data.Anomalies.Unclaimed) > 0 && len(unmatched.Rows) == 0 {
		t.Error("no unmatched usage, though some tracks have territories nobody claims")
	}
	for _, r := range unmatched.Rows {
		if pair := fmt.Sprintf("%s/%s", r["isrc"], r["territory"]); !slices.Contains(data.Anomalies.Unclaimed, pair) {
			t.Errorf("unmatched usage %v of %s, which has a share", r["report"], pair)
		}
	}
	tracks, err := projector.List(ctx, "catalog", "track", &projection.Query{Limit: 1})
	if err != nil || len(tracks.Rows) != 1 {
		t.Fatalf("catalog: %v, %v", tracks, err)
	}

	// Determinism: each read model rebuilt from the log equals the live
	// one.
	sums := map[string]string{}
	for _, name := range projector.Names() {
		if sums[name], err = projector.Checksum(ctx, name, 0); err != nil {
			t.Fatal(err)
		}
		gen, err := projector.StartRebuild(ctx, name, false)
		if err != nil {
			t.Fatal(err)
		}
		for {
			st, err := projector.Status(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if st.Rebuild != nil && st.Rebuild.Position >= st.Head {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: the rebuild did not catch up: %+v", name, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if rebuilt, err := projector.Checksum(ctx, name, gen); err != nil || rebuilt != sums[name] {
			t.Errorf("%s: the rebuilt read model differs from the live one (%v)", name, err)
		}
	}
	return sums
}
