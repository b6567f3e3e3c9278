package loadquery_test

import (
	"context"
	"flag"
	"fmt"
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
// Projector, once per backend, and then measures each kind of query
// under -loadquery.clients concurrent clients (see package loadquery) in
// a sub-benchmark of its own. Each op of a kind is one warm-up and one
// measured phase; use -benchtime 1x, and -count for repetitions on the
// same read model:
//
//	go test -run XXX -bench BenchmarkQueryLoad -benchtime 1x -count 3 -timeout 90m ./projection/internal/loadquery/
//
// The fill (append and catch-up times) is printed to standard output,
// prefixed with "# loadquery"; each measured phase logs a line. PostgreSQL is
// the test server (RAWEVENTS_TEST_DATABASE_URL, default
// postgres@127.0.0.1:5432/test); without one that sub-benchmark is
// skipped.
func BenchmarkQueryLoad(b *testing.B) {
	for _, backend := range []struct{ name, id string }{{"SQLite", loadquery.SQLite}, {"Postgres", loadquery.Postgres}} {
		b.Run(backend.name, func(b *testing.B) {
			var leaf *testing.B // the kind being measured: its lines go to its log
			logf := func(format string, args ...any) {
				line := fmt.Sprintf("# loadquery %s %s: %s", backend.name, time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
				if leaf != nil {
					leaf.Log(line)
					return
				}
				fmt.Println(line)
			}
			cfg := loadquery.Config{Backend: backend.id, Dir: b.TempDir(), Rows: *rows, Clients: *clients, Duration: *duration,
				ProjectionBatch: *batch, SQLiteReadConns: *conns, Logf: logf}
			if *kinds != "" {
				cfg.Kinds = strings.Split(*kinds, ",")
			} else {
				cfg.Kinds = loadquery.AllKinds
			}
			if backend.id == loadquery.Postgres {
				pgtest.Pool(b) // skips when the server is not reachable (fails in CI)
			}
			ctx := context.Background()
			env, err := loadquery.Fill(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(env.Close)
			logf("fill: %d rows, append %.1f s (%.0f events/s), catch-up %.1f s (%.0f events/s)",
				*rows, env.Append.Seconds(), float64(*rows)/env.Append.Seconds(), env.CatchUp.Seconds(), float64(*rows)/env.CatchUp.Seconds())
			for _, kind := range cfg.Kinds {
				b.Run(kind, func(b *testing.B) {
					var kr loadquery.KindResult
					leaf = b
					defer func() { leaf = nil }()
					for range b.N {
						if kr, err = env.Measure(ctx, kind); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(kr.P50.Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(kr.P99.Microseconds())/1000, "p99-ms")
					b.ReportMetric(kr.PerSecond, "req/s")
					b.ReportMetric(float64(kr.Errors), "errors")
					b.ReportMetric(kr.RowsPerRequest, "rows/req")
				})
			}
		})
	}
}
