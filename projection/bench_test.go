package projection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/projection/internal/loadquery"
	"github.com/rawevents/rawevents/rawtest"
)

// The catch-up log: catchUpEvents item.saved events over catchUpKeys
// items (each item saved twice, so half the upserts insert and half
// update), appended in AppendManyTx batches of 1,000. The rows are those
// of package loadquery: a text key, two indexed columns, a time, and a
// title and body under a full-text index.
const (
	catchUpEvents = 20_000
	catchUpKeys   = 10_000
)

// BenchmarkCatchUp measures a projection catching up with a log of
// 20,000 events, beside a plain read of the same log.
//
//   - read: Store.ReadAll of the whole global log from position 0, in
//     pages of 1,000, on the log store: the baseline.
//   - batch=N: a new projection (new tables, new subscription) with
//     BatchSize N, timed from Projector.Run until WaitFor(head) returns.
//     Its tables are created (Setup) before the timer starts. The
//     subscription reads the log in pages of 1,000 (its default), so a
//     batch never holds more than 1,000 events: batch=2000 is batches of
//     up to 1,000.
//   - batch=500/nosearch: the same table without its full-text index.
//   - batch=500/noop: a handler that decodes the event and writes
//     nothing: the subscription engine and its checkpoints alone.
//   - floor-writes, floor-search: the database alone (see floor).
//
// Every sub-benchmark reports events/s (events of the log ÷ time per
// op); catch-up ÷ read is the ratio to watch. The log is built once per
// backend; each op of batch=N builds a read model of its own (named
// cu<N>_<op>), so later ops do not find rows in place.
//
// SQLite: the log in one file, the read models in a second one
// (rawtest.SQLiteFile). PostgreSQL: both in one fresh schema of the test
// database (rawtest.Postgres).
func BenchmarkCatchUp(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) {
		log := rawtest.SQLite(b)
		read := rawtest.SQLiteFile(b, filepath.Join(b.TempDir(), "read.db"))
		benchCatchUp(b, log, read)
		benchFloor(b, sqliteFloor{read.Driver().(*sqlite.Driver).DB()})
	})
	b.Run("Postgres", func(b *testing.B) {
		log := rawtest.Postgres(b)
		benchCatchUp(b, log, log)
		d := log.Driver().(*postgres.Driver)
		benchFloor(b, postgresFloor{d.Pool(), d.Schema()})
	})
}

var catchUpSeq atomic.Int64

func benchCatchUp[TTx any](b *testing.B, log, read *rawevents.Store[TTx]) {
	ctx := context.Background()
	head, err := loadquery.AppendItems(ctx, log, 0, catchUpEvents, catchUpKeys, 1_000, nil)
	if err != nil {
		b.Fatal(err)
	}
	if head != catchUpEvents {
		b.Fatalf("head %d, want %d", head, catchUpEvents)
	}
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var after int64
			n := 0
			for {
				page, err := log.ReadAll(ctx, &rawevents.ReadAllOpts{After: after, Limit: 1_000})
				if err != nil {
					b.Fatal(err)
				}
				n += len(page)
				if len(page) < 1_000 {
					break
				}
				after = page[len(page)-1].Position
			}
			if n != catchUpEvents {
				b.Fatalf("read %d events, want %d", n, catchUpEvents)
			}
		}
		b.ReportMetric(float64(catchUpEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	variants := []struct {
		name  string
		batch int
		edit  func(*projection.Projection)
	}{
		{"batch=100", 100, nil},
		{"batch=500", 500, nil},
		{"batch=2000", 2000, nil},
		// The same table without its full-text index.
		{"batch=500/nosearch", 500, func(p *projection.Projection) { p.Tables[0].Search = nil }},
		// A handler that decodes the event and writes nothing: what the
		// subscription engine and the checkpoints cost.
		{"batch=500/noop", 500, func(p *projection.Projection) {
			p.Handle = func(_ context.Context, _ *projection.Tx, e event.Event) error {
				var v map[string]any
				return json.Unmarshal(e.Data, &v)
			}
		}},
	}
	for _, v := range variants {
		batch := v.batch
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				name := fmt.Sprintf("cu%d_%d", batch, catchUpSeq.Add(1))
				pr := loadquery.Projection(name, batch)
				if v.edit != nil {
					v.edit(pr)
				}
				// Quiet: a log line between a benchmark's name and its
				// figures would hide them from benchstat.
				p, err := projection.New(log, read, &projection.Options{Logger: slog.New(slog.DiscardHandler)}, pr)
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Setup(ctx); err != nil {
					b.Fatal(err)
				}
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				b.StartTimer()
				go func() { done <- p.Run(rctx) }()
				err = p.WaitFor(ctx, name, head, 5*time.Minute)
				b.StopTimer()
				cancel()
				if runErr := <-done; runErr != nil {
					b.Fatal(runErr)
				}
				if err != nil {
					b.Fatal(err)
				}
				if v.edit == nil {
					checkCatchUp(b, p, name)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(catchUpEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// checkCatchUp checks that the read model has every item, each at its
// last event.
func checkCatchUp[TTx any](b *testing.B, p *projection.Projector[TTx], name string) {
	b.Helper()
	ctx := context.Background()
	last := catchUpEvents - 1
	want := loadquery.ItemEvent(last, catchUpKeys)
	row, err := p.Get(ctx, name, loadquery.Table, loadquery.ItemID(last%catchUpKeys))
	if err != nil {
		b.Fatal(err)
	}
	if title, _ := row["title"].(string); !strings.Contains(string(want.Data), `"title":"`+title+`"`) {
		b.Fatalf("row %v is not at the last event %s", row, want.Data)
	}
	n, cursor := 0, ""
	for {
		page, err := p.List(ctx, name, loadquery.Table, &projection.Query{Limit: projection.MaxLimit, Cursor: cursor})
		if err != nil {
			b.Fatal(err)
		}
		n += len(page.Rows)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if n != catchUpKeys {
		b.Fatalf("%d rows, want %d", n, catchUpKeys)
	}
}
