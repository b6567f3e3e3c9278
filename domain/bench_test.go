package domain_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/pgtest"
)

// BenchmarkPipeline measures raw events processed end to end (raw event
// read, processor, command, aggregate loaded, domain event appended,
// checkpoint) per second, beside the store's own batched append rate and
// the same work done as one River job per raw event, in the same run. Each
// op is one raw event. Compare with
//
//	go test -run '^$' -bench Pipeline -benchtime 20000x -count 3 ./domain
func BenchmarkPipeline(b *testing.B) {
	b.Run("SQLite/append100", func(b *testing.B) { benchAppend(b, benchSQLite(b)) })
	b.Run("SQLite/appendMany200x1", func(b *testing.B) { benchAppendMany(b, benchSQLite(b)) })
	for _, partitions := range []int{1, 4} {
		b.Run(fmt.Sprintf("SQLite/partitions=%d", partitions), func(b *testing.B) {
			store := benchSQLite(b)
			benchPipeline(b, store, func(ctx context.Context) func() {
				return runInProcess(b, ctx, store, partitions)
			})
		})
	}
	b.Run("SQLite/river", benchRiverSQLite)
	b.Run("Postgres/append100", func(b *testing.B) { benchAppend(b, benchPostgres(b)) })
	b.Run("Postgres/appendMany200x1", func(b *testing.B) { benchAppendMany(b, benchPostgres(b)) })
	for _, processes := range []int{1, 3} {
		b.Run(fmt.Sprintf("Postgres/workers=%d", processes), func(b *testing.B) {
			store := benchPostgres(b)
			schema := store.Driver().(*postgres.Driver).Schema()
			benchPipeline(b, store, func(context.Context) func() { return runProcesses(b, schema, processes) })
		})
	}
	b.Run("Postgres/river", benchRiverPostgres)
}

func benchSQLite(b *testing.B) *rawevents.Store[*sql.Tx] {
	d, err := sqlite.Open(filepath.Join(b.TempDir(), "events.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	return benchOpen(b, d)
}

func benchPostgres(b *testing.B) *rawevents.Store[pgx.Tx] {
	pool := pgtest.Pool(b)
	d, err := postgres.New(pool, &postgres.Config{Schema: pgtest.Schema(b, pool)})
	if err != nil {
		b.Fatal(err)
	}
	return benchOpen(b, d)
}

func benchOpen[TTx any](b *testing.B, d driver.Driver[TTx]) *rawevents.Store[TTx] {
	ctx := context.Background()
	if _, err := d.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return store
}

// benchAppend is the baseline: Store.Append of 100 events per call, round
// robin over 1,000 streams.
func benchAppend[TTx any](b *testing.B, store *rawevents.Store[TTx]) {
	ctx := context.Background()
	data := []byte(`{"key":"k001","seq":1,"note":"a payload about the size of a raw event's data"}`)
	batch := make([]event.Proposed, 100)
	for i := range batch {
		batch[i] = event.Proposed{Type: "bench", Data: data}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		n := min(len(batch), b.N-i)
		if _, err := store.Append(ctx, fmt.Sprintf("s-%d", (i/len(batch))%1000), event.Any, batch[:n]...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// benchAppendMany is the store writing what a processor's batch writes:
// one event to each of 200 streams in one transaction (Store.AppendManyTx,
// one round trip on PostgreSQL), streams round robin over 500 keys at
// their exact versions. It is the ceiling of the pipeline's append.
func benchAppendMany[TTx any](b *testing.B, store *rawevents.Store[TTx]) {
	ctx := context.Background()
	data := []byte(`{"seq":1}`)
	versions := map[string]int64{}
	b.ResetTimer()
	for i := 0; i < b.N; i += 200 {
		var appends []rawevents.StreamAppend
		for n := i; n < min(i+200, b.N); n++ {
			stream := fmt.Sprintf("counter-k%03d", n%500)
			appends = append(appends, rawevents.StreamAppend{StreamID: stream, Expected: event.Exact(versions[stream]),
				Events: []event.Proposed{{Type: "counted", Data: data}}})
			versions[stream]++
		}
		err := store.Driver().InTx(ctx, func(tx TTx) error {
			_, err := store.AppendManyTx(ctx, tx, appends)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// benchPipeline stores b.N raw events over 500 keys, then starts the
// workers and times them until every raw event is processed.
func benchPipeline[TTx any](b *testing.B, store *rawevents.Store[TTx], start func(context.Context) func()) {
	ctx := context.Background()
	const keys = 500
	var last int64
	// Stored as ingestion stores raw events: keyed by their CloudEvents
	// id, with the store's time-ordered ids.
	for sent := 0; sent < b.N; sent += 1000 {
		var events []rawevents.StreamEvent
		for n := sent; n < min(sent+1000, b.N); n++ {
			key, seq := fmt.Sprintf("k%03d", n%keys), n/keys+1
			id := fmt.Sprintf("%s-%d", key, seq)
			envelope := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"gen","type":"seq","datacontenttype":"application/json","data":{"key":%q,"seq":%d}}`, id, key, seq)
			events = append(events, rawevents.StreamEvent{StreamID: ingest.StreamID("gen"), Key: id, Event: event.Proposed{Type: "seq", Data: []byte(envelope),
				Metadata: event.Metadata{Origin: &event.Origin{Source: "gen", ID: id}}}})
		}
		out, err := store.AppendIfAbsent(ctx, events)
		if err != nil {
			b.Fatal(err)
		}
		last = out[len(out)-1].Event.Position
	}
	b.ResetTimer()
	stop := start(ctx)
	for {
		st, err := store.SubscriptionStatus(ctx, "processor:counter")
		if err == nil && st.Position >= last {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	st, err := store.SubscriptionStatus(ctx, "processor:counter")
	if err != nil || st.Parked != 0 {
		b.Fatalf("status %+v, %v", st, err)
	}
}

func runInProcess[TTx any](b *testing.B, ctx context.Context, store *rawevents.Store[TTx], partitions int) func() {
	p, err := counterProcessor(store, func(msg string) { b.Error("rejected:", msg) })
	if err != nil {
		b.Fatal(err)
	}
	sub, err := p.Subscription(&rawevents.Subscription[TTx]{Partitions: partitions, BatchSize: 200})
	if err != nil {
		b.Fatal(err)
	}
	s, err := rawevents.NewSubscriber(store, sub)
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

func runProcesses(b *testing.B, schema string, n int) func() {
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), workerSchemaEnv+"="+schema)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	return func() {
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM) //nolint:errcheck // waited for next
			c.Wait()                          //nolint:errcheck // stopped
		}
	}
}
