// Package loadquery measures the query side of package projection under
// load: it fills a read model of Rows rows through a Projector (appending
// the events to a fresh log and letting the projector catch up), then
// drives Clients goroutines against the Projector's Get and List for a
// bounded time per kind of query, and reports the latency percentiles
// and the request rate of each kind.
//
// It measures the library, not the HTTP API: each request is a direct
// call of Projector.Get or Projector.List. Everything runs on this
// machine: the load, the Go process and, for PostgreSQL, the server.
//
// BenchmarkQueryLoad in this package's test runs it on both backends:
//
//	go test -run XXX -bench BenchmarkQueryLoad -benchtime 1x ./projection/internal/loadquery/
//
// The rows and the projection are also what projection's BenchmarkCatchUp
// builds, with fewer rows.
package loadquery

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/projection"
)

// Backends.
const (
	SQLite   = "sqlite"   // the log in one file, the read model in a second one
	Postgres = "postgres" // the log and the read model in one fresh schema
)

// Kinds of queries. Each request picks its key, category or word at
// random (seeded per client).
const (
	// KindGet is Get by key, a random existing row.
	KindGet = "get"
	// KindList is List with an equality filter on the indexed column
	// category (Categories values, so Rows/Categories rows each), sorted
	// by another indexed column, amount, descending; limit 50. The
	// projection declares the index (category, amount, id) for it.
	KindList = "list"
	// KindListByKey is the same filter sorted by the key, descending,
	// which the category index (category, id) serves in order.
	KindListByKey = "list_by_key"
	// KindSearchCommon is a full-text search for CommonWord, which half
	// the rows hold; default sort (by key), limit 50.
	KindSearchCommon = "search_common"
	// KindSearchRare is a full-text search for RareWord, which one row in
	// 100,000 holds; default sort, limit 50.
	KindSearchRare = "search_rare"
)

// AllKinds are the kinds Run measures by default, in order.
var AllKinds = []string{KindGet, KindList, KindListByKey, KindSearchCommon, KindSearchRare}

// The data. Every row's title and body are words drawn from a synthetic
// vocabulary of 1,728 made-up words (three syllables each); CommonWord is
// added to the rows with an even number, RareWord to one row in RareEvery.
const (
	Categories = 100
	CommonWord = "signal"
	RareWord   = "quasar"
	RareEvery  = 100_000
	// Table is the read model's table; Name the default projection name.
	Table = "item"
	Name  = "loadquery"
)

// Config sets up a run. Zero values take the defaults.
type Config struct {
	// Backend is SQLite or Postgres. Required.
	Backend string
	// Dir is where the SQLite files go (events.db and read.db). Required
	// for SQLite.
	Dir string
	// PostgresURL is the server; default the test server
	// (RAWEVENTS_TEST_DATABASE_URL or postgres@127.0.0.1:5432/test). Run
	// works in a fresh schema and drops it at the end.
	PostgresURL string
	// PoolSize is the PostgreSQL pool's size; default 32, as the tests'
	// pool.
	PoolSize int
	// SQLiteReadConns is the SQLite driver's read pool; 0 keeps the
	// driver's default (4).
	SQLiteReadConns int
	// Rows is how many rows the read model gets, one event each; default
	// 1,000,000.
	Rows int
	// AppendBatch is how many events each AppendManyTx call writes;
	// default 5,000.
	AppendBatch int
	// ProjectionBatch is the projection's BatchSize; 0 keeps the
	// projection's default (500).
	ProjectionBatch int
	// CatchUpTimeout bounds the projector's catch-up; default 30 minutes.
	CatchUpTimeout time.Duration
	// Clients is the number of goroutines sending queries; default 64.
	Clients int
	// Duration is how long each kind is measured; default 10 s.
	Duration time.Duration
	// Warmup is how long each kind runs, unmeasured, before; default 1 s.
	Warmup time.Duration
	// MaxRequests bounds the requests of a kind's measured phase; default
	// 2,000,000.
	MaxRequests int
	// Kinds are the kinds measured, in order; default AllKinds.
	Kinds []string
	// Logf receives progress lines; nil drops them.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() (Config, error) {
	c.PostgresURL = cmp.Or(c.PostgresURL, pgtest.URL())
	c.PoolSize = cmp.Or(c.PoolSize, 32)
	c.Rows = cmp.Or(c.Rows, 1_000_000)
	c.AppendBatch = cmp.Or(c.AppendBatch, 5_000)
	c.CatchUpTimeout = cmp.Or(c.CatchUpTimeout, 30*time.Minute)
	c.Clients = cmp.Or(c.Clients, 64)
	c.Duration = cmp.Or(c.Duration, 10*time.Second)
	c.Warmup = cmp.Or(c.Warmup, time.Second)
	c.MaxRequests = cmp.Or(c.MaxRequests, 2_000_000)
	if len(c.Kinds) == 0 {
		c.Kinds = AllKinds
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	for _, k := range c.Kinds {
		if !slices.Contains(AllKinds, k) {
			return c, fmt.Errorf("loadquery: unknown kind %q", k)
		}
	}
	switch {
	case c.Backend != SQLite && c.Backend != Postgres:
		return c, fmt.Errorf("loadquery: Backend must be %q or %q, not %q", SQLite, Postgres, c.Backend)
	case c.Backend == SQLite && c.Dir == "":
		return c, errors.New("loadquery: SQLite needs Dir")
	case c.Rows < 1 || c.AppendBatch < 1 || c.Clients < 1 || c.ProjectionBatch < 0:
		return c, errors.New("loadquery: Rows, AppendBatch and Clients must be positive")
	}
	return c, nil
}

// Result is what a run measured.
type Result struct {
	Backend string
	Rows    int
	// Append is the time the log took to take the Rows events; CatchUp
	// the time from the projector's Run until WaitFor(head) returned.
	Append, CatchUp time.Duration
	Kinds           []KindResult
}

// KindResult is one kind's measured phase.
type KindResult struct {
	Kind     string
	Clients  int
	Requests int
	Errors   int
	// FirstError is the first error, if any.
	FirstError string
	// Elapsed is the measured phase's length.
	Elapsed time.Duration
	// P50, P99 and Max are latencies of the successful requests, each from
	// the call to its return.
	P50, P99, Max time.Duration
	// PerSecond is successful requests per second of Elapsed.
	PerSecond float64
	// RowsPerRequest is the mean number of rows a request returned.
	RowsPerRequest float64
}

// Run fills a read model and measures the queries, as Config says.
func Run(ctx context.Context, config Config) (*Result, error) {
	env, err := Fill(ctx, config)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	res := &Result{Backend: env.cfg.Backend, Rows: env.cfg.Rows, Append: env.Append, CatchUp: env.CatchUp}
	for _, kind := range env.cfg.Kinds {
		kr, err := env.Measure(ctx, kind)
		res.Kinds = append(res.Kinds, kr)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// Env is a filled read model, its projector running, ready for queries.
type Env struct {
	cfg Config
	// Append and CatchUp are as in Result.
	Append, CatchUp time.Duration
	query           func(kind string) query
	closers         []func()
}

// Close stops the projector and closes the stores; on PostgreSQL it
// drops the schema.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// Measure runs one kind of query from Config.Clients goroutines: a
// warm-up of Config.Warmup, then the measured phase of Config.Duration.
// Each client starts requests until the phase ends and finishes the one
// in flight, so a phase lasts longer than Duration when requests are
// slow. It fails when no request succeeded.
func (e *Env) Measure(ctx context.Context, kind string) (KindResult, error) {
	if !slices.Contains(AllKinds, kind) {
		return KindResult{}, fmt.Errorf("loadquery: unknown kind %q", kind)
	}
	q := e.query(kind)
	load(ctx, e.cfg.Clients, e.cfg.Warmup, e.cfg.MaxRequests, q) // unmeasured
	kr := load(ctx, e.cfg.Clients, e.cfg.Duration, e.cfg.MaxRequests, q)
	kr.Kind = kind
	e.cfg.Logf("%-14s %d clients: %7d requests in %v, %d errors, %8.0f req/s, p50 %v, p99 %v, max %v, %.1f rows/request",
		kind, kr.Clients, kr.Requests, kr.Elapsed.Round(time.Millisecond), kr.Errors, kr.PerSecond, kr.P50, kr.P99, kr.Max, kr.RowsPerRequest)
	if kr.Errors > 0 {
		e.cfg.Logf("%s: first error: %s", kind, kr.FirstError)
	}
	if kr.Requests == 0 {
		return kr, fmt.Errorf("%s: no request succeeded: %s", kind, kr.FirstError)
	}
	return kr, nil
}

// Fill opens the stores of Config.Backend, appends Config.Rows events,
// runs a Projector until it has caught up, and returns the read model
// ready for Measure. Close it.
func Fill(ctx context.Context, config Config) (env *Env, err error) {
	cfg, err := config.withDefaults()
	if err != nil {
		return nil, err
	}
	env = &Env{cfg: cfg}
	defer func() {
		if err != nil {
			env.Close()
		}
	}()
	switch cfg.Backend {
	case SQLite:
		var sc *sqlite.Config
		if cfg.SQLiteReadConns > 0 {
			sc = &sqlite.Config{ReadConns: cfg.SQLiteReadConns}
		}
		log, err := openSQLite(ctx, filepath.Join(cfg.Dir, "events.db"), sc)
		if err != nil {
			return nil, err
		}
		env.closers = append(env.closers, func() { log.Close() })
		read, err := openSQLite(ctx, filepath.Join(cfg.Dir, "read.db"), sc)
		if err != nil {
			return nil, err
		}
		env.closers = append(env.closers, func() { read.Close() })
		return env, fill(ctx, env, log, read, nil)
	default:
		pc, err := pgxpool.ParseConfig(cfg.PostgresURL)
		if err != nil {
			return nil, err
		}
		pc.MaxConns = int32(cfg.PoolSize)
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			return nil, err
		}
		env.closers = append(env.closers, pool.Close)
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		schema := "loadquery_" + hex.EncodeToString(b[:])
		env.closers = append(env.closers, func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if _, err := pool.Exec(dctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
				cfg.Logf("drop schema %s: %v", schema, err)
			}
		})
		d, err := postgres.New(pool, &postgres.Config{Schema: schema})
		if err != nil {
			return nil, err
		}
		store, err := openStore(ctx, d)
		if err != nil {
			return nil, err
		}
		env.closers = append(env.closers, func() { store.Close() })
		analyze := func(ctx context.Context, physical string) error {
			// The test server runs with autovacuum off; a production one
			// would have analyzed a table this size by now.
			_, err := pool.Exec(ctx, `VACUUM (ANALYZE) `+pgx.Identifier{schema, physical}.Sanitize())
			return err
		}
		return env, fill(ctx, env, store, store, analyze)
	}
}

func openSQLite(ctx context.Context, path string, sc *sqlite.Config) (*rawevents.Store[*sql.Tx], error) {
	d, err := sqlite.Open(path, sc)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, d)
}

func openStore[TTx any](ctx context.Context, d driver.Driver[TTx]) (*rawevents.Store[TTx], error) {
	if _, err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		d.Close()
		return nil, err
	}
	return store, nil
}

func fill[TTx any](ctx context.Context, env *Env, log, read *rawevents.Store[TTx], analyze func(context.Context, string) error) error {
	cfg := env.cfg
	start := time.Now()
	head, err := AppendItems(ctx, log, 0, cfg.Rows, cfg.Rows, cfg.AppendBatch, func(n int) {
		if n%(50*cfg.AppendBatch) == 0 {
			cfg.Logf("appended %d of %d events (%.0f/s)", n, cfg.Rows, float64(n)/time.Since(start).Seconds())
		}
	})
	if err != nil {
		return err
	}
	env.Append = time.Since(start)
	cfg.Logf("appended %d events in %v (%.0f events/s), head %d", cfg.Rows, env.Append.Round(time.Millisecond), float64(cfg.Rows)/env.Append.Seconds(), head)

	p, err := projection.New(log, read, nil, Projection(Name, cfg.ProjectionBatch))
	if err != nil {
		return err
	}
	if err := p.Setup(ctx); err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- p.Run(rctx) }()
	env.closers = append(env.closers, func() {
		stop()
		<-done
	})
	wctx, wstop := context.WithCancel(ctx)
	go func() { // progress
		for {
			select {
			case <-wctx.Done():
				return
			case <-time.After(30 * time.Second):
				at, _ := p.Position(wctx, Name)
				cfg.Logf("catch-up at %d of %d (%.0f events/s)", at, head, float64(at)/time.Since(start).Seconds())
			}
		}
	}()
	err = p.WaitFor(ctx, Name, head, cfg.CatchUpTimeout)
	wstop()
	if err != nil {
		at, _ := p.Position(ctx, Name)
		return fmt.Errorf("catch-up reached %d of %d in %v: %w", at, head, time.Since(start).Round(time.Second), err)
	}
	env.CatchUp = time.Since(start)
	cfg.Logf("projector caught up with %d events in %v (%.0f events/s)", head, env.CatchUp.Round(time.Millisecond), float64(head)/env.CatchUp.Seconds())
	if analyze != nil {
		t := time.Now()
		if err := analyze(ctx, "rm_"+Name+"_"+Table+"_g1"); err != nil {
			return err
		}
		cfg.Logf("VACUUM (ANALYZE) of the read model: %v", time.Since(t).Round(time.Millisecond))
	}
	if err := check(ctx, p, cfg.Rows); err != nil {
		return err
	}
	env.query = func(kind string) query { return makeQuery(p, kind, cfg.Rows) }
	return nil
}

// check makes sure the read model has what the queries expect.
func check[TTx any](ctx context.Context, p *projection.Projector[TTx], rows int) error {
	last := rows - 1
	row, err := p.Get(ctx, Name, Table, ItemID(last))
	if err != nil {
		return err
	}
	if row["category"] != Category(last) {
		return fmt.Errorf("row %d: %v", last, row)
	}
	page, err := p.List(ctx, Name, Table, &projection.Query{Search: CommonWord, Limit: 2})
	if err != nil {
		return err
	}
	if len(page.Rows) != 2 {
		return fmt.Errorf("search %q found %d rows", CommonWord, len(page.Rows))
	}
	return nil
}

// query is one request; it returns the rows it got.
type query func(ctx context.Context, r *mrand.Rand) (int, error)

func makeQuery[TTx any](p *projection.Projector[TTx], kind string, rows int) query {
	list := func(ctx context.Context, q *projection.Query) (int, error) {
		page, err := p.List(ctx, Name, Table, q)
		if err != nil {
			return 0, err
		}
		return len(page.Rows), nil
	}
	switch kind {
	case KindGet:
		return func(ctx context.Context, r *mrand.Rand) (int, error) {
			_, err := p.Get(ctx, Name, Table, ItemID(r.IntN(rows)))
			return 1, err
		}
	case KindList, KindListByKey:
		sort := "-amount"
		if kind == KindListByKey {
			sort = "-id"
		}
		return func(ctx context.Context, r *mrand.Rand) (int, error) {
			return list(ctx, &projection.Query{Filters: map[string]string{"category": Category(r.IntN(Categories))}, Sort: sort, Limit: 50})
		}
	case KindSearchCommon:
		return func(ctx context.Context, _ *mrand.Rand) (int, error) {
			return list(ctx, &projection.Query{Search: CommonWord, Limit: 50})
		}
	default:
		return func(ctx context.Context, _ *mrand.Rand) (int, error) {
			return list(ctx, &projection.Query{Search: RareWord, Limit: 50})
		}
	}
}

// load runs q from clients goroutines for d or until max requests have
// started, and measures each request.
func load(ctx context.Context, clients int, d time.Duration, max int, q query) KindResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		started  atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr string
		rowsSum  int
	)
	begin := time.Now()
	deadline := begin.Add(d)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(c)+1, uint64(begin.UnixNano())))
			var lat []time.Duration
			var n, bad int
			var first string
			for time.Now().Before(deadline) && started.Add(1) <= int64(max) && ctx.Err() == nil {
				t := time.Now()
				got, err := q(ctx, r)
				el := time.Since(t)
				if err != nil {
					if bad == 0 {
						first = err.Error()
					}
					bad++
					continue
				}
				lat = append(lat, el)
				n += got
			}
			mu.Lock()
			all = append(all, lat...)
			errs += bad
			rowsSum += n
			if firstErr == "" {
				firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	slices.Sort(all)
	kr := KindResult{Clients: clients, Requests: len(all), Errors: errs, FirstError: firstErr, Elapsed: elapsed}
	if len(all) > 0 {
		kr.P50, kr.P99, kr.Max = percentile(all, 0.50), percentile(all, 0.99), all[len(all)-1]
		kr.PerSecond = float64(len(all)) / elapsed.Seconds()
		kr.RowsPerRequest = float64(rowsSum) / float64(len(all))
	}
	return kr
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Projection is the read model: one table of items, keyed by id, with
// two indexed columns and a full-text index over title and body. Its
// handler upserts the event's item.
func Projection(name string, batchSize int) *projection.Projection {
	return &projection.Projection{
		Name:      name,
		Version:   1,
		Types:     []string{"item.saved"},
		BatchSize: batchSize,
		Tables: []projection.Table{{
			Name: Table,
			Columns: []projection.Column{
				{Name: "id", Type: projection.Text},
				{Name: "title", Type: projection.Text},
				{Name: "body", Type: projection.Text},
				{Name: "category", Type: projection.Text, Index: true},
				{Name: "amount", Type: projection.Integer, Index: true},
				{Name: "updated", Type: projection.Time},
			},
			Key:    []string{"id"},
			Search: []string{"title", "body"},
			// KindList: category=… sorted by amount.
			Indexes: [][]string{{"category", "amount"}},
		}},
		Handle: func(ctx context.Context, tx *projection.Tx, e event.Event) error {
			var it item
			if err := json.Unmarshal(e.Data, &it); err != nil {
				return err
			}
			return tx.Upsert(ctx, Table, projection.Row{
				"id": it.ID, "title": it.Title, "body": it.Body, "category": it.Category, "amount": it.Amount, "updated": e.RecordedAt,
			})
		},
	}
}

// item is an item.saved event's data.
type item struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Body     string `json:"body"`
	Category string `json:"category"`
	Amount   int64  `json:"amount"`
}

// ItemID is the id of item k.
func ItemID(k int) string { return fmt.Sprintf("item-%07d", k) }

// Category is item k's category.
func Category(k int) string { return fmt.Sprintf("c%03d", k%Categories) }

var syllables = []string{"ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "du", "so", "ba"}

// word is one of the 1,728 words of the vocabulary: three syllables, so
// that no word is CommonWord or RareWord or a stem of them.
func word(n int) string {
	return syllables[n%12] + syllables[n/12%12] + syllables[n/144%12]
}

// ItemEvent is the n-th event of the log: it saves item n % keys.
// Titles have 6 words and bodies 20 (about 45 and 150 bytes), from a
// generator seeded by n, so the same n gives the same event.
func ItemEvent(n, keys int) event.Proposed {
	k := n % keys
	r := mrand.New(mrand.NewPCG(uint64(n), 0x9e3779b97f4a7c15))
	words := func(count int) string {
		w := make([]string, count)
		for i := range w {
			w[i] = word(r.IntN(1728))
		}
		return strings.Join(w, " ")
	}
	title, body := words(6), words(20)
	if k%2 == 0 {
		body += " " + CommonWord
	}
	if k%RareEvery == RareEvery/2 {
		title += " " + RareWord
	}
	data, _ := json.Marshal(item{ID: ItemID(k), Title: title, Body: body, Category: Category(k), Amount: r.Int64N(100_000)})
	return event.Proposed{Type: "item.saved", Data: data}
}

// AppendItems appends events from to from+count-1 (see ItemEvent), each
// to its item's stream, batch events per AppendManyTx in a transaction of
// its own, and returns the head of the log. progress, if not nil, gets
// the number of events appended after each batch.
func AppendItems[TTx any](ctx context.Context, store *rawevents.Store[TTx], from, count, keys, batch int, progress func(int)) (int64, error) {
	var head int64
	for sent := 0; sent < count; sent += batch {
		var appends []rawevents.StreamAppend
		for n := from + sent; n < from+min(sent+batch, count); n++ {
			e := ItemEvent(n, keys)
			appends = append(appends, rawevents.StreamAppend{StreamID: ItemID(n % keys), Expected: event.Any, Events: []event.Proposed{e}})
		}
		err := store.Driver().InTx(ctx, func(tx TTx) error {
			res, err := store.AppendManyTx(ctx, tx, appends)
			if err == nil {
				head = res[len(res)-1].LastPosition()
			}
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("append events %d..: %w", from+sent, err)
		}
		if progress != nil {
			progress(min(sent+batch, count))
		}
	}
	return head, nil
}
