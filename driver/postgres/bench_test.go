package postgres_test

// Benchmarks of the store beside a baseline: the same rows written to and
// read from a bare table (same columns and types, a primary key and
// nothing else) in the store's schema, through the same pgxpool. Each
// operation has the sub-benchmarks impl=baseline and impl=store, so
//
//	benchstat -col /impl bench/results.txt
//
// shows them side by side. See BENCHMARKS.md for the figures.

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/eventjson"
	"github.com/rawevents/rawevents/internal/pgtest"
)

const (
	// benchStreams is how many streams appends go to, round robin.
	benchStreams = 1_000
	// benchLogSize is how many events the read benchmark reads per
	// iteration, in pages of benchPage.
	benchLogSize = 20_000
	benchPage    = 1_000
)

// benchData is the payload of every event: 104 bytes of JSON.
var benchData = json.RawMessage(`{"order_id":"ord-7f3a9c21","customer_id":"cust-004217","amount_cents":129900,"currency":"EUR","lines":3}`)

// benchMetadata is the metadata of every event: a correlation id (which
// the store also copies to an indexed column) and an actor.
var benchMetadata = event.Metadata{CorrelationID: "0193a5b2-7c1e-7d40-9a53-1f0c2e8b4d17", Actor: "svc-checkout"}

type benchBundle struct {
	pool  *pgxpool.Pool
	store *rawevents.Store[pgx.Tx]
	// table is the baseline table, schema-qualified.
	table string
	// metadata is benchMetadata encoded once: the baseline inserts it as
	// a ready value, the store encodes it on every append.
	metadata string
	streams  []string
}

// benchSetup migrates a store in a fresh schema and creates the baseline
// table in it.
func benchSetup(b *testing.B) *benchBundle {
	b.Helper()
	ctx := context.Background()
	pool := pgtest.Pool(b)
	schema := pgtest.Schema(b, pool)
	d, err := postgres.New(pool, &postgres.Config{Schema: schema})
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
	table := pgx.Identifier{schema, "baseline_events"}.Sanitize()
	// The events table's columns and types, with a position from a
	// sequence (bigserial: CACHE 1, like the store's), a primary key and
	// nothing else: no unique constraints, no correlation index, no
	// trigger, no function.
	if _, err := pool.Exec(ctx, `CREATE TABLE `+table+` (
		position       bigserial   PRIMARY KEY,
		event_id       uuid        NOT NULL,
		stream_id      text        NOT NULL,
		stream_version bigint      NOT NULL,
		type           text        NOT NULL,
		schema_version integer     NOT NULL,
		data           json        NOT NULL,
		metadata       jsonb       NOT NULL,
		correlation_id text,
		causation_id   text,
		occurred_at    timestamptz NOT NULL,
		recorded_at    timestamptz NOT NULL)`); err != nil {
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
	return &benchBundle{pool: pool, store: store, table: table, metadata: string(metadata), streams: streams}
}

// BenchmarkAppend1 appends one event per transaction. The baseline is one
// INSERT ... VALUES in its own (implicit) transaction: one round trip,
// like the store's call of append_events.
func BenchmarkAppend1(b *testing.B) {
	bb := benchSetup(b)
	ctx := context.Background()
	query := `INSERT INTO ` + bb.table + ` (event_id, stream_id, stream_version, type, schema_version, data, metadata,
		correlation_id, causation_id, occurred_at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	// Round-robin state lives outside the sub-benchmarks, which run more
	// than once: the baseline's stream versions stay what the store's are.
	versions := make([]int64, benchStreams)
	baseNext, storeNext := 0, 0

	b.Run("impl=baseline", func(b *testing.B) {
		rows := 0
		b.ReportAllocs()
		for b.Loop() {
			s := baseNext % benchStreams
			baseNext++
			versions[s]++
			id, err := uuid.NewV7()
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Microsecond)
			correlation := benchMetadata.CorrelationID
			if _, err := bb.pool.Exec(ctx, query, id, bb.streams[s], versions[s], "order.placed", int32(1),
				string(benchData), bb.metadata, &correlation, nil, now, now); err != nil {
				b.Fatal(err)
			}
			rows++
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("impl=store", func(b *testing.B) {
		benchmarkStoreAppend(b, bb, 1, &storeNext)
	})
}

// BenchmarkAppend100 appends 100 events per transaction. The baseline is
// one INSERT ... SELECT FROM unnest(arrays): all rows in one statement and
// one round trip, the fastest plain way short of COPY (which takes more
// than one round trip per transaction).
func BenchmarkAppend100(b *testing.B) {
	const batch = 100
	bb := benchSetup(b)
	ctx := context.Background()
	query := `INSERT INTO ` + bb.table + ` (event_id, stream_id, stream_version, type, schema_version, data, metadata,
		correlation_id, causation_id, occurred_at, recorded_at)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::integer[], $6::json[], $7::jsonb[],
		                     $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[])`
	versions := make([]int64, benchStreams)
	baseNext, storeNext := 0, 0

	b.Run("impl=baseline", func(b *testing.B) {
		var (
			ids            = make([]uuid.UUID, batch)
			streams        = make([]string, batch)
			streamVersions = make([]int64, batch)
			types          = make([]string, batch)
			schemaVersions = make([]int32, batch)
			data           = make([]string, batch)
			metadata       = make([]string, batch)
			correlation    = make([]*string, batch)
			causation      = make([]*string, batch)
			occurred       = make([]time.Time, batch)
			recorded       = make([]time.Time, batch)
		)
		correlationID := benchMetadata.CorrelationID
		rows := 0
		b.ReportAllocs()
		for b.Loop() {
			s := baseNext % benchStreams
			baseNext++
			now := time.Now().UTC().Truncate(time.Microsecond)
			for i := range batch {
				id, err := uuid.NewV7()
				if err != nil {
					b.Fatal(err)
				}
				versions[s]++
				ids[i], streams[i], streamVersions[i], types[i], schemaVersions[i] = id, bb.streams[s], versions[s], "order.placed", 1
				data[i], metadata[i], correlation[i], causation[i] = string(benchData), bb.metadata, &correlationID, nil
				occurred[i], recorded[i] = now, now
			}
			if _, err := bb.pool.Exec(ctx, query, ids, streams, streamVersions, types, schemaVersions, data, metadata,
				correlation, causation, occurred, recorded); err != nil {
				b.Fatal(err)
			}
			rows += batch
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("impl=store", func(b *testing.B) {
		benchmarkStoreAppend(b, bb, batch, &storeNext)
	})
}

// benchmarkStoreAppend appends batch events per append, each batch to the
// next of benchStreams streams in turn (expected version: event.Any, which
// costs the store the same work as an exact version).
func benchmarkStoreAppend(b *testing.B, bb *benchBundle, batch int, next *int) {
	ctx := context.Background()
	proposed := make([]event.Proposed, batch)
	for i := range proposed {
		proposed[i] = event.Proposed{Type: "order.placed", SchemaVersion: 1, Data: benchData, Metadata: benchMetadata}
	}
	rows := 0
	b.ReportAllocs()
	for b.Loop() {
		s := *next % benchStreams
		*next++
		if _, err := bb.store.Append(ctx, bb.streams[s], event.Any, proposed...); err != nil {
			b.Fatal(err)
		}
		rows += batch
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadAll reads a log of benchLogSize events from the start, in
// pages of benchPage, per iteration. The baseline table holds a copy of
// the same rows; both tables are vacuumed and analysed first, so neither
// pays for setting hint bits during the benchmark.
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
	events := pgx.Identifier{bb.store.Driver().(*postgres.Driver).Schema(), "events"}.Sanitize()
	for _, stmt := range []string{
		`INSERT INTO ` + bb.table + ` SELECT position, event_id, stream_id, stream_version, type, schema_version, data,
			metadata, correlation_id, causation_id, occurred_at, recorded_at FROM ` + events,
		`VACUUM (ANALYZE) ` + events,
		`VACUUM (ANALYZE) ` + bb.table,
	} {
		if _, err := bb.pool.Exec(ctx, stmt); err != nil {
			b.Fatal(err)
		}
	}
	query := `SELECT position, event_id, stream_id, stream_version, type, schema_version, data, metadata, occurred_at, recorded_at
		FROM ` + bb.table + ` WHERE position > $1 ORDER BY position LIMIT $2`

	b.Run("impl=baseline", func(b *testing.B) {
		benchmarkRead(b, func(after int64) ([]event.Event, error) { return readBaselinePage(ctx, bb.pool, query, after) })
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
func readBaselinePage(ctx context.Context, pool *pgxpool.Pool, query string, after int64) ([]event.Event, error) {
	rows, err := pool.Query(ctx, query, after, benchPage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []event.Event
	for rows.Next() {
		var e event.Event
		var data, meta []byte
		if err := rows.Scan(&e.Position, &e.ID, &e.StreamID, &e.StreamVersion, &e.Type, &e.SchemaVersion, &data, &meta, &e.OccurredAt, &e.RecordedAt); err != nil {
			return nil, err
		}
		if err := eventjson.Metadata(meta, &e.Metadata); err != nil {
			return nil, err
		}
		e.Data = data
		e.OccurredAt, e.RecordedAt = e.OccurredAt.UTC(), e.RecordedAt.UTC()
		events = append(events, e)
	}
	return events, rows.Err()
}
