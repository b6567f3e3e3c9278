package loadquery_test

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/projection/internal/loadquery"
)

var (
	rows     = flag.Int("loadquery.rows", 1_000_000, "rows of the read model")
	clients  = flag.Int("loadquery.clients", 64, "concurrent clients")
	duration = flag.Duration("loadquery.duration", 10*time.Second, "measured time per kind of query")
	batch    = flag.Int("loadquery.batch", 0, "the projection's BatchSize (0: its default, 500)")
	conns    = flag.Int("loadquery.sqlite-read-conns", 0, "SQLite read pool (0: the driver's default, 4)")
	kinds    = flag.String("loadquery.kinds", "", "comma-separated kinds (default: all)")
)

// BenchmarkQueryLoad fills a read model of -loadquery.rows rows through a
// Projector and measures each kind of query under -loadquery.clients
// concurrent clients (see package loadquery). Each b.N is a whole run;
// use -benchtime 1x:
//
//	go test -run XXX -bench BenchmarkQueryLoad -benchtime 1x -timeout 60m ./projection/internal/loadquery/
//
// PostgreSQL is the test server (RAWEVENTS_TEST_DATABASE_URL, default
// postgres@127.0.0.1:5432/test); without one that sub-benchmark is skipped.
func BenchmarkQueryLoad(b *testing.B) {
	for _, backend := range []struct{ name, id string }{{"SQLite", loadquery.SQLite}, {"Postgres", loadquery.Postgres}} {
		b.Run(backend.name, func(b *testing.B) {
			cfg := loadquery.Config{Backend: backend.id, Rows: *rows, Clients: *clients, Duration: *duration,
				ProjectionBatch: *batch, SQLiteReadConns: *conns, Logf: b.Logf}
			if *kinds != "" {
				cfg.Kinds = strings.Split(*kinds, ",")
			}
			if backend.id == loadquery.Postgres {
				pgtest.Pool(b) // skips when the server is not reachable (fails in CI)
			}
			var res *loadquery.Result
			for range b.N {
				cfg.Dir = b.TempDir()
				var err error
				if res, err = loadquery.Run(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.Append.Seconds(), "append-s")
			b.ReportMetric(res.CatchUp.Seconds(), "catchup-s")
			b.ReportMetric(float64(res.Rows)/res.CatchUp.Seconds(), "catchup-events/s")
			for _, k := range res.Kinds {
				b.ReportMetric(float64(k.P50.Microseconds())/1000, k.Kind+"-p50-ms")
				b.ReportMetric(float64(k.P99.Microseconds())/1000, k.Kind+"-p99-ms")
				b.ReportMetric(k.PerSecond, k.Kind+"-req/s")
			}
		})
	}
}
