package sqlite_test

// Benchmarks of the store beside a baseline: the same rows written to and
// read from a bare table (same columns, a primary key and nothing else) in
// the same file, with the same driver (database/sql on modernc.org/sqlite)
// and the same settings (WAL, synchronous=FULL, BEGIN IMMEDIATE). Each
// operation has the sub-benchmarks impl=baseline and impl=store, so
//
//	benchstat -col /impl bench/results.txt
//
// shows them side by side. See BENCHMARKS.md for the figures.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/eventjson"
)

const (
	// benchStreams is how many streams appends go to, round robin.
	benchStreams = 1_000
	// benchLogSize is how many events the read benchmark reads per
	// iteration, in pages of benchPage.
	benchLogSize = 20_000
	benchPage    = 1_000
	// benchPragmas are the driver's own settings (see sqlite.Open), so that
	// the baseline connection writes with the same durability.
	benchPragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
)

// benchData is the payload of every event: 104 bytes of JSON.
var benchData = json.RawMessage(`{"order_id":"ord-7f3a9c21","customer_id":"cust-004217","amount_cents":129900,"currency":"EUR","lines":3}`)

// benchMetadata is the metadata of every event: a correlation id (which
// the store also copies to an indexed column) and an actor.
var benchMetadata = event.Metadata{CorrelationID: "0193a5b2-7c1e-7d40-9a53-1f0c2e8b4d17", Actor: "svc-checkout"}

type benchBundle struct {
	store *rawevents.Store[*sql.Tx]
	// base is the baseline's write connection, base read its read pool,
	// both on the store's file.
	base, baseRead *sql.DB
	// metadata is benchMetadata encoded once: the baseline inserts it as
	// a ready value, the store encodes it on every append.
	metadata string
	streams  []string
}

// benchSetup opens a store in a fresh file and creates the baseline table
// beside it.
func benchSetup(b *testing.B) *benchBundle {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	d, err := sqlite.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		b.Fatal(err)
	}

	base, err := sql.Open("sqlite", path+"?"+benchPragmas+"&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { base.Close() })
	base.SetMaxOpenConns(1)
	base.SetMaxIdleConns(1)
	baseRead, err := sql.Open("sqlite", path+"?"+benchPragmas+"&_pragma=query_only(1)")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { baseRead.Close() })
	baseRead.SetMaxOpenConns(4)
	baseRead.SetMaxIdleConns(4)

	var journal string
	var sync int
	if err := base.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil {
		b.Fatal(err)
	}
	if err := base.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		b.Fatal(err)
	}
	if journal != "wal" || sync != 2 {
		b.Fatalf("baseline connection: journal_mode %s synchronous %d, want wal and 2 (FULL)", journal, sync)
	}
	// The events table's columns and types, a primary key and nothing
	// else: no unique indexes, no correlation index, no triggers.
	if _, err := base.ExecContext(ctx, `CREATE TABLE baseline_events (
		position       INTEGER PRIMARY KEY,
		event_id       TEXT    NOT NULL,
		stream_id      TEXT    NOT NULL,
		stream_version INTEGER NOT NULL,
		type           TEXT    NOT NULL,
		schema_version INTEGER NOT NULL,
		data           TEXT    NOT NULL,
		metadata       TEXT    NOT NULL,
		correlation_id TEXT,
		causation_id   TEXT,
		occurred_at    INTEGER NOT NULL,
		recorded_at    INTEGER NOT NULL)`); err != nil {
		b.Fatal(err)
	}

	metadata, err := json.Marshal(benchMetadata)
	if err != nil {
		b.Fatal(err)
	}
	streams := make([]string, benchStreams)
	for i := range streams {
		streams[i] = fmt.Sprintf("order-%04d", i)
	}
	return &benchBundle{store: store, base: base, baseRead: baseRead, metadata: string(metadata), streams: streams}
}

// BenchmarkAppend1 appends one event per transaction. The baseline is
// BEGIN IMMEDIATE, one INSERT, COMMIT.
func BenchmarkAppend1(b *testing.B) { benchmarkAppend(b, 1) }

// BenchmarkAppend100 appends 100 events per transaction. The baseline is
// BEGIN IMMEDIATE, one INSERT of 100 rows (one VALUES list), COMMIT.
func BenchmarkAppend100(b *testing.B) { benchmarkAppend(b, 100) }

// benchmarkAppend appends batch events per transaction, each batch to the
// next of benchStreams streams in turn (expected version: event.Any, which
// costs the store the same checks as an exact version).
func benchmarkAppend(b *testing.B, batch int) {
	bb := benchSetup(b)
	ctx := context.Background()

	// Round-robin state lives outside the sub-benchmarks, which run more
	// than once: the baseline's stream versions stay what the store's are.
	versions := make([]int64, benchStreams)
	baseNext, storeNext := 0, 0

	b.Run("impl=baseline", func(b *testing.B) {
		query := `INSERT INTO baseline_events (event_id, stream_id, stream_version, type, schema_version, data, metadata,
			correlation_id, causation_id, occurred_at, recorded_at) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?,?),", batch), ",")
		args := make([]any, 0, 11*batch)
		rows := 0
		b.ReportAllocs()
		for b.Loop() {
			s := baseNext % benchStreams
			baseNext++
			now := time.Now().UTC().Truncate(time.Microsecond).UnixMicro()
			args = args[:0]
			for range batch {
				id, err := uuid.NewV7()
				if err != nil {
					b.Fatal(err)
				}
				versions[s]++
				args = append(args, id.String(), bb.streams[s], versions[s], "order.placed", 1,
					string(benchData), bb.metadata, benchMetadata.CorrelationID, nil, now, now)
			}
			tx, err := bb.base.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, query, args...); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			rows += batch
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("impl=store", func(b *testing.B) {
		proposed := make([]event.Proposed, batch)
		for i := range proposed {
			proposed[i] = event.Proposed{Type: "order.placed", SchemaVersion: 1, Data: benchData, Metadata: benchMetadata}
		}
		rows := 0
		b.ReportAllocs()
		for b.Loop() {
			s := storeNext % benchStreams
			storeNext++
			if _, err := bb.store.Append(ctx, bb.streams[s], event.Any, proposed...); err != nil {
				b.Fatal(err)
			}
			rows += batch
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkReadAll reads a log of benchLogSize events from the start, in
// pages of benchPage, per iteration. The baseline table holds a copy of
// the same rows.
func BenchmarkReadAll(b *testing.B) {
	bb := benchSetup(b)
	ctx := context.Background()
	proposed := make([]event.Proposed, 100)
	for i := range proposed {
		proposed[i] = event.Proposed{Type: "order.placed", SchemaVersion: 1, Data: benchData, Metadata: benchMetadata}
	}
	for i := range benchLogSize / len(proposed) {
		if _, err := bb.store.Append(ctx, bb.streams[i%benchStreams], event.Any, proposed...); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := bb.base.ExecContext(ctx, `INSERT INTO baseline_events SELECT position, event_id, stream_id, stream_version,
		type, schema_version, data, metadata, correlation_id, causation_id, occurred_at, recorded_at FROM events`); err != nil {
		b.Fatal(err)
	}

	b.Run("impl=baseline", func(b *testing.B) {
		benchmarkRead(b, func(after int64) ([]event.Event, error) { return readBaselinePage(ctx, bb.baseRead, after) })
	})
	b.Run("impl=store", func(b *testing.B) {
		benchmarkRead(b, func(after int64) ([]event.Event, error) {
			return bb.store.ReadAll(ctx, &rawevents.ReadAllOpts{After: after, Limit: benchPage})
		})
	})
}

func benchmarkRead(b *testing.B, readPage func(after int64) ([]event.Event, error)) {
	rows := 0
	b.ReportAllocs()
	for b.Loop() {
		after, n := int64(0), 0
		for {
			page, err := readPage(after)
			if err != nil {
				b.Fatal(err)
			}
			n += len(page)
			if len(page) < benchPage {
				break
			}
			after = page[len(page)-1].Position
		}
		if n != benchLogSize {
			b.Fatalf("read %d events, want %d", n, benchLogSize)
		}
		rows += n
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "events/s")
}

// readBaselinePage is the plain way to read a page: one range query,
// scanned into the same Go types as the store's events.
func readBaselinePage(ctx context.Context, db *sql.DB, after int64) ([]event.Event, error) {
	rows, err := db.QueryContext(ctx, `SELECT position, event_id, stream_id, stream_version, type, schema_version, data, metadata,
		occurred_at, recorded_at FROM baseline_events WHERE position > ? ORDER BY position LIMIT ?`, after, benchPage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []event.Event
	for rows.Next() {
		var (
			e                  event.Event
			id                 string
			data, meta         []byte
			occurred, recorded int64
		)
		if err := rows.Scan(&e.Position, &id, &e.StreamID, &e.StreamVersion, &e.Type, &e.SchemaVersion, &data, &meta, &occurred, &recorded); err != nil {
			return nil, err
		}
		if e.ID, err = uuid.Parse(id); err != nil {
			return nil, err
		}
		if err := eventjson.Metadata(meta, &e.Metadata); err != nil {
			return nil, err
		}
		e.Data = data
		e.OccurredAt, e.RecordedAt = time.UnixMicro(occurred).UTC(), time.UnixMicro(recorded).UTC()
		events = append(events, e)
	}
	return events, rows.Err()
}
