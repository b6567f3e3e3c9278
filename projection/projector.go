package projection

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
)

// Positioner says how far a stage of the pipeline is: every event of the
// log up to Position is done. *rawevents.Subscriber and
// rawevents.StoredProgress are Positioners.
type Positioner interface {
	Position(ctx context.Context) (int64, error)
}

// Options configure a Projector. Nil means the defaults.
type Options struct {
	// Upstream are the stages whose output the projections read: the
	// processors that turn raw events into domain events. WaitFor waits
	// for them first, so that waiting for a raw event's position waits
	// for its effects on the read models.
	Upstream []Positioner
	// Language is the PostgreSQL text search configuration of full-text
	// columns; default "english". SQLite stems English (porter) always.
	Language string
	// AutoRebuild starts a rebuild, and swaps when it is done, for a
	// projection whose read model was built by another version. Without
	// it such a projection is reported as needing a rebuild, keeps
	// serving what it has, and is not updated.
	AutoRebuild bool
	// BulkIndexFrom is how long the log must be for a new generation (a
	// projection's first, or a rebuild) to be built without its indexes
	// other than the key, and its full-text index, which are then built
	// in one pass over its rows once it has caught up: maintaining them
	// row by row while applying a long history costs several times more.
	// Until they are built the generation is catching up: a search of it
	// fails with ErrIndexing, WaitFor waits for them, and a rebuild is not
	// swapped in. Zero means 10,000 events; negative, never.
	BulkIndexFrom int64
	// Lease, Owner and Logger are those of the projections' subscriptions
	// (see rawevents.Subscription).
	Lease  time.Duration
	Owner  string
	Logger *slog.Logger
}

// ErrNotFound is wrapped by the errors of lookups of a projection, a
// table, a row or a rebuild that does not exist.
var ErrNotFound = errors.New("not found")

// ErrRebuildRunning is returned when a rebuild is asked for a projection
// that is being rebuilt.
var ErrRebuildRunning = errors.New("a rebuild of this projection is already running")

// Projector keeps projections up to date and answers queries on them.
//
// Events are read from the log store; read models, their checkpoints and
// their registry live in the read store, which may be the log store
// itself or a store on another database (on the embedded default a
// second SQLite file, so that projections do not queue behind ingestion
// for SQLite's single writer).
type Projector[TTx any] struct {
	log, read   *rawevents.Store[TTx]
	opts        Options
	d           dialect
	pool        execer // reads
	ddl         execer // schema changes and registry writes
	wrap        func(TTx) execer
	projections map[string]*Projection
	names       []string

	mu      sync.Mutex
	running map[string]*generationRun[TTx] // by subscription name

	// failedMu guards failed apart from mu: a generation's goroutine
	// records its failure while reconcile, holding mu, waits for it to end.
	failedMu sync.Mutex
	failed   map[string]error    // by projection: strict stops, for good
	samples  map[string][]sample // by projection, for Reflects

	setupMu sync.Mutex
	setup   bool

	// built is signalled when a batch of a generation without its
	// indexes commits: Run looks whether it has caught up.
	built chan struct{}

	tablesMu sync.Mutex
	tables   map[string]*generationTables // by projection and generation
}

// generationRun is a generation's subscription running in this process.
type generationRun[TTx any] struct {
	sub    *rawevents.Subscriber[TTx]
	pr     *Projection
	gen    int
	cancel context.CancelFunc
	done   chan struct{}
	// analyzed is the position at which the tables' statistics were
	// last refreshed (see analyze); only Run's goroutine uses it.
	analyzed int64
	tables   *generationTables
	// near is when the generation, built without its indexes, first came
	// within indexLag of the head; only Run's goroutine uses it.
	near time.Time
}

// New returns a Projector of projections, reading events from log and
// keeping read models in read (which may be log). Read must be an SQLite
// or a PostgreSQL store.
func New[TTx any](log, read *rawevents.Store[TTx], opts *Options, projections ...*Projection) (*Projector[TTx], error) {
	p := &Projector[TTx]{log: log, read: read, projections: map[string]*Projection{},
		running: map[string]*generationRun[TTx]{}, failed: map[string]error{}, samples: map[string][]sample{},
		tables: map[string]*generationTables{}, built: make(chan struct{}, 1)}
	if opts != nil {
		p.opts = *opts
	}
	p.opts.Language = cmp.Or(p.opts.Language, "english")
	p.opts.BulkIndexFrom = cmp.Or(p.opts.BulkIndexFrom, 10_000)
	if p.opts.Logger == nil {
		p.opts.Logger = slog.Default()
	}
	if p.opts.Owner == "" {
		p.opts.Owner = rawevents.NewOwnerID()
	}
	switch d := any(read.Driver()).(type) {
	case *sqlite.Driver:
		p.d, p.pool, p.ddl = sqliteDialect{}, sqlExec{d.ReadDB()}, sqlExec{d.DB()}
		p.wrap = func(tx TTx) execer { return sqlExec{any(tx).(*sql.Tx)} }
	case *postgres.Driver:
		p.d = postgresDialect{schema: d.Schema(), language: p.opts.Language}
		p.pool, p.ddl = pgxExec{d.Pool()}, pgxExec{d.Pool()}
		p.wrap = func(tx TTx) execer { return pgxExec{any(tx).(pgx.Tx)} }
	default:
		return nil, fmt.Errorf("projection: read models need an SQLite or PostgreSQL store, not %T", read.Driver())
	}
	var errs []error
	for _, pr := range projections {
		if err := pr.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if p.projections[pr.Name] != nil {
			errs = append(errs, fmt.Errorf("projection %q: %w: declared twice", pr.Name, ErrInvalid))
		}
		p.projections[pr.Name] = pr
		p.names = append(p.names, pr.Name)
	}
	return p, errors.Join(errs...)
}

// Names lists the projections, in the order given to New.
func (p *Projector[TTx]) Names() []string { return p.names }

// Projection returns a projection's definition.
func (p *Projector[TTx]) Projection(name string) (*Projection, error) {
	pr := p.projections[name]
	if pr == nil {
		return nil, fmt.Errorf("projection %q: %w", name, ErrNotFound)
	}
	return pr, nil
}

// Generation states in the registry.
const (
	genLive     = "live"
	genBuilding = "building"
	genRetired  = "retired"
	genDropped  = "dropped" // tables gone; kept so its number is not reused
)

// generation is a row of the registry: one build of a projection's tables.
type generation struct {
	Projection string
	Generation int
	Version    int
	State      string
	Swap       bool // swap in when caught up
	CreatedAt  time.Time
	// Indexed says that the generation's indexes are built (see
	// Options.BulkIndexFrom).
	Indexed bool
}

func (p *Projector[TTx]) registry() string { return p.d.name("rawevents_projections") }

// Setup creates the registry and, for a projection seen for the first
// time, its tables. Run calls it; call it before queries in a process
// that does not run the projections.
func (p *Projector[TTx]) Setup(ctx context.Context) error {
	p.setupMu.Lock()
	defer p.setupMu.Unlock()
	if p.setup {
		return nil
	}
	boolType, timeType := p.d.columnType(Bool), p.d.columnType(Time)
	yes, _ := p.d.toDB(Bool, true)
	if _, err := p.ddl.exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
		projection text NOT NULL, generation integer NOT NULL, version integer NOT NULL,
		state text NOT NULL, swap %s NOT NULL, created_at %s NOT NULL, indexed %s NOT NULL DEFAULT %v,
		PRIMARY KEY (projection, generation))`,
		p.registry(), boolType, timeType, boolType, yes)); err != nil {
		return fmt.Errorf("projection: create registry: %w", err)
	}
	// A registry from before Options.BulkIndexFrom: every generation in
	// it was built with its indexes.
	if err := p.ddl.query(ctx, fmt.Sprintf(`SELECT indexed FROM %s WHERE 1 = 0`, p.registry()), nil, func([]any) error { return nil }); err != nil {
		if _, err := p.ddl.exec(ctx, fmt.Sprintf(`ALTER TABLE %s ADD COLUMN indexed %s NOT NULL DEFAULT %v`, p.registry(), boolType, yes)); err != nil {
			return fmt.Errorf("projection: add registry column indexed: %w", err)
		}
	}
	for _, name := range p.names {
		gens, err := p.generations(ctx, name)
		if err != nil {
			return err
		}
		if len(gens) == 0 {
			if err := p.addGeneration(ctx, p.projections[name], 1, genLive, false); err != nil {
				return err
			}
		}
	}
	p.setup = true
	return nil
}

func (p *Projector[TTx]) addGeneration(ctx context.Context, pr *Projection, gen int, state string, swap bool) error {
	indexed := true
	if p.opts.BulkIndexFrom > 0 && pr.hasIndexes() {
		head, err := p.log.Head(ctx)
		if err != nil {
			return err
		}
		indexed = head < p.opts.BulkIndexFrom
	}
	// A generation built beside the live one is not queried before it
	// is swapped in (see createTable).
	queried := state != genBuilding
	for i := range pr.Tables {
		t := &pr.Tables[i]
		stmts := p.d.createTable(physicalName(pr.Name, t.Name, gen), t, indexed, queried)
		if indexed {
			stmts = append(stmts, p.d.indexTable(physicalName(pr.Name, t.Name, gen), t)...)
		}
		for _, stmt := range stmts {
			if _, err := p.ddl.exec(ctx, stmt); err != nil {
				return fmt.Errorf("projection %s: create table %s: %w", pr.Name, t.Name, err)
			}
		}
	}
	created, err := p.d.toDB(Time, time.Now())
	if err != nil {
		return err
	}
	swapArg, _ := p.d.toDB(Bool, swap)
	indexedArg, _ := p.d.toDB(Bool, indexed)
	// The first generation may be registered by two processes starting
	// together; a later one by one StartRebuild only.
	conflict := ""
	if gen == 1 {
		conflict = " ON CONFLICT DO NOTHING"
	}
	_, err = p.ddl.exec(ctx, fmt.Sprintf(`INSERT INTO %s (projection, generation, version, state, swap, created_at, indexed) VALUES (%s)%s`,
		p.registry(), placeholders(p.d, 7), conflict), pr.Name, gen, pr.Version, state, swapArg, created, indexedArg)
	if err != nil {
		return fmt.Errorf("projection %s: register generation %d: %w", pr.Name, gen, err)
	}
	return nil
}

func placeholders(d dialect, n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = d.placeholder(i + 1)
	}
	return strings.Join(out, ", ")
}

func physicalName(projection, table string, gen int) string {
	return fmt.Sprintf("rm_%s_%s_g%d", projection, table, gen)
}

func subscriptionName(projection string, gen int) string {
	return fmt.Sprintf("projection:%s:g%d", projection, gen)
}

// generations lists a projection's generations, oldest first.
func (p *Projector[TTx]) generations(ctx context.Context, name string) ([]generation, error) {
	var out []generation
	err := p.pool.query(ctx, fmt.Sprintf(`SELECT projection, generation, version, state, swap, created_at, indexed FROM %s WHERE projection = %s ORDER BY generation`,
		p.registry(), p.d.placeholder(1)), []any{name}, func(v []any) error {
		g := generation{Projection: name, State: fmt.Sprint(v[3])}
		var err error
		var swap, created, indexed any
		if swap, err = p.d.fromDB(Bool, v[4]); err == nil {
			if created, err = p.d.fromDB(Time, v[5]); err == nil {
				indexed, err = p.d.fromDB(Bool, v[6])
			}
		}
		if err != nil {
			return err
		}
		g.Generation, g.Version, g.Swap, g.CreatedAt = int(toInt(v[1])), int(toInt(v[2])), swap.(bool), created.(time.Time)
		g.Indexed = indexed.(bool)
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("projection %s: read registry: %w", name, err)
	}
	return out, nil
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int32:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}

// current returns a projection's live generation and its building one
// (nil when none).
func (p *Projector[TTx]) current(ctx context.Context, name string) (live, building *generation, err error) {
	if err := p.Setup(ctx); err != nil {
		return nil, nil, err
	}
	gens, err := p.generations(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	for i := range gens {
		switch gens[i].State {
		case genLive:
			if live != nil {
				return nil, nil, fmt.Errorf("projection %s: generations %d and %d are both live", name, live.Generation, gens[i].Generation)
			}
			live = &gens[i]
		case genBuilding:
			building = &gens[i]
		}
	}
	if live == nil {
		return nil, nil, fmt.Errorf("projection %q has no read model yet: %w", name, ErrNotFound)
	}
	return live, building, nil
}

// generationTables are where a generation's tables live.
type generationTables struct {
	byName map[string]*physicalTable
	// indexed is set once the generation's indexes are known to be
	// built; until then isIndexed reads the registry.
	indexed    atomic.Bool
	isIndexed  string // the registry query, with the projection and generation as arguments
	projection string
	gen        int
}

// physicalTables returns where a generation's tables live.
func (p *Projector[TTx]) physicalTables(pr *Projection, gen int) *generationTables {
	key := pr.Name + ":" + strconv.Itoa(gen)
	p.tablesMu.Lock()
	defer p.tablesMu.Unlock()
	if t, ok := p.tables[key]; ok {
		return t
	}
	tables := &generationTables{byName: map[string]*physicalTable{}, projection: pr.Name, gen: gen,
		isIndexed: fmt.Sprintf(`SELECT indexed FROM %s WHERE projection = %s AND generation = %s`,
			p.registry(), p.d.placeholder(1), p.d.placeholder(2))}
	for i := range pr.Tables {
		t := &pr.Tables[i]
		tables.byName[t.Name] = &physicalTable{Table: t, physical: physicalName(pr.Name, t.Name, gen), sql: map[string]string{}}
	}
	p.tables[key] = tables
	return tables
}

// built reports whether the generation's indexes are built, as x sees
// the registry.
func (g *generationTables) built(ctx context.Context, x execer, d dialect) (bool, error) {
	if g.indexed.Load() {
		return true, nil
	}
	var indexed bool
	err := x.query(ctx, g.isIndexed, []any{g.projection, g.gen}, func(v []any) error {
		b, err := d.fromDB(Bool, v[0])
		indexed, _ = b.(bool)
		return err
	})
	if err != nil {
		return false, err
	}
	if indexed {
		g.indexed.Store(true)
	}
	return indexed, nil
}

// Run keeps the projections up to date until ctx ends: it runs this
// process's share of each projection's partitions (live and, during a
// rebuild, the one being built), follows the registry for rebuilds
// started elsewhere, and swaps a finished rebuild in. It returns nil when
// ctx ends.
func (p *Projector[TTx]) Run(ctx context.Context) error {
	if err := p.Setup(ctx); err != nil {
		return err
	}
	defer p.stopAll()
	warned := map[string]bool{}
	tick := time.NewTicker(reconcileEvery)
	defer tick.Stop()
	for {
		for _, name := range p.names {
			if err := p.reconcile(ctx, name, warned); err != nil && ctx.Err() == nil {
				p.opts.Logger.Warn("projection", "projection", name, "err", err)
			}
		}
		if !p.sleep(ctx, tick.C) {
			return nil
		}
	}
}

// sleep tends the generations running here and waits for the next tick,
// tending them again each time a batch of one without its indexes
// commits; false when ctx ends.
func (p *Projector[TTx]) sleep(ctx context.Context, tick <-chan time.Time) bool {
	for {
		p.tend(ctx)
		select {
		case <-ctx.Done():
			return false
		case <-tick:
			return true
		case <-p.built:
		}
	}
}

// A generation built without its indexes gets them once it has applied
// the whole log, or, on a log that keeps growing, indexWait after it
// first came within indexLag of the head (a tenth of BulkIndexFrom, at
// most a page of the log) or, running all its partitions here, read the
// log to its head (see Subscriber.ReachedHead): the events after the
// build are indexed as they are applied, at the higher cost.
func (p *Projector[TTx]) indexLag() int64 { return min(p.opts.BulkIndexFrom/10, 1_000) }

const indexWait = time.Second

// tend does for each generation running here what it needs besides its
// events: its indexes built, when it was built without them and has
// caught up (see indexLag), and its tables analyzed (see analyzeFrom).
// The head of the log is read once, and a generation's position only
// when one of them may be due.
func (p *Projector[TTx]) tend(ctx context.Context) {
	p.mu.Lock()
	runs := make([]*generationRun[TTx], 0, len(p.running))
	for _, run := range p.running {
		runs = append(runs, run)
	}
	p.mu.Unlock()
	if len(runs) == 0 {
		return
	}
	// The head bounds every position: while it has not doubled, no
	// generation's position has.
	head, err := p.log.Head(ctx)
	if err != nil {
		return
	}
	for _, run := range runs {
		due := max(analyzeFrom, 2*run.analyzed)
		indexing := !run.tables.indexed.Load()
		if head < due && !indexing {
			continue
		}
		at, err := run.sub.Position(ctx)
		if err != nil {
			continue
		}
		if indexing {
			p.index(ctx, run, head, at)
		}
		if at >= due {
			p.analyze(ctx, run, at)
		}
	}
}

// index builds the indexes of a generation built without them once it
// has caught up.
func (p *Projector[TTx]) index(ctx context.Context, run *generationRun[TTx], head, at int64) {
	if head > at {
		if head-at > p.indexLag() && run.near.IsZero() && !run.sub.ReachedHead() {
			return
		}
		// Within reach once is enough: on a log that grows in bursts the
		// lag seen after a batch may go back above indexLag.
		if run.near.IsZero() {
			run.near = time.Now()
		}
		if time.Since(run.near) < indexWait {
			return
		}
	}
	start := time.Now()
	if err := p.buildIndexes(ctx, run.pr, run.tables); err != nil {
		if ctx.Err() == nil {
			p.opts.Logger.Warn("projection: build indexes", "projection", run.pr.Name, "generation", run.gen, "err", err)
		}
		return
	}
	p.opts.Logger.Info("projection caught up: indexes built", "projection", run.pr.Name, "generation", run.gen,
		"position", at, "took", time.Since(start).Round(time.Millisecond))
}

// buildIndexes builds a generation's indexes over the rows it holds and
// records it in the registry, in one transaction: the batches applied
// meanwhile wait for it, and the ones after it keep the indexes up to
// date. Another process building them too finds them built.
func (p *Projector[TTx]) buildIndexes(ctx context.Context, pr *Projection, g *generationTables) error {
	yes, _ := p.d.toDB(Bool, true)
	err := p.read.Driver().InTx(ctx, func(tx TTx) error {
		x := p.wrap(tx)
		n, err := x.exec(ctx, fmt.Sprintf(`UPDATE %s SET indexed = %s WHERE projection = %s AND generation = %s AND indexed <> %s`,
			p.registry(), p.d.placeholder(1), p.d.placeholder(2), p.d.placeholder(3), p.d.placeholder(1)), yes, pr.Name, g.gen)
		if err != nil || n == 0 {
			return err
		}
		for i := range pr.Tables {
			for _, stmt := range p.d.indexTable(physicalName(pr.Name, pr.Tables[i].Name, g.gen), &pr.Tables[i]) {
				if _, err := x.exec(ctx, stmt); err != nil {
					return fmt.Errorf("table %s: %w", pr.Tables[i].Name, err)
				}
			}
		}
		return nil
	})
	if err == nil {
		g.indexed.Store(true)
	}
	return err
}

// reconcileEvery is how often Run looks at the registry.
const reconcileEvery = 500 * time.Millisecond

func (p *Projector[TTx]) reconcile(ctx context.Context, name string, warned map[string]bool) error {
	pr := p.projections[name]
	live, building, err := p.current(ctx, name)
	if err != nil {
		return err
	}
	want := map[string]*generation{}
	if live.Version == pr.Version {
		want[subscriptionName(name, live.Generation)] = live
	} else if building == nil {
		if p.opts.AutoRebuild {
			p.opts.Logger.Info("projection version changed: rebuilding", "projection", name, "from", live.Version, "to", pr.Version)
			if _, err := p.StartRebuild(ctx, name, true); err != nil && !errors.Is(err, ErrRebuildRunning) {
				return err
			}
			return nil
		}
		if !warned[name] {
			warned[name] = true
			p.opts.Logger.Warn("projection read model was built by another version: rebuild it (rawevents projections rebuild)",
				"projection", name, "built", live.Version, "code", pr.Version)
		}
	}
	if building != nil && building.Version == pr.Version {
		want[subscriptionName(name, building.Generation)] = building
		if building.Swap {
			if err := p.swapWhenCaughtUp(ctx, name, building); err != nil {
				return err
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for sub, run := range p.running {
		if strings.HasPrefix(sub, "projection:"+name+":") {
			if _, ok := want[sub]; !ok {
				run.cancel()
				<-run.done
				delete(p.running, sub)
			}
		}
	}
	for sub, gen := range want {
		if run, ok := p.running[sub]; ok {
			select {
			case <-run.done:
				delete(p.running, sub) // stopped by itself: start again unless it failed for good
				if p.failure(name) != nil {
					continue
				}
			default:
				continue
			}
		}
		if err := p.start(ctx, pr, gen); err != nil {
			return err
		}
	}
	return nil
}

// analyzeFrom is the position from which a generation's tables are
// first analyzed.
const analyzeFrom = 1_000

// analyze refreshes the query planner's statistics of a generation's
// tables, due each time its position has doubled since the last time: a
// read model built from history grows from nothing, and a planner that
// still takes a table for small walks it whole where an index would read
// ten rows. Between the doublings PostgreSQL's autovacuum keeps the
// statistics current.
func (p *Projector[TTx]) analyze(ctx context.Context, run *generationRun[TTx], at int64) {
	for i := range run.pr.Tables {
		for _, stmt := range p.d.analyze(physicalName(run.pr.Name, run.pr.Tables[i].Name, run.gen)) {
			if _, err := p.ddl.exec(ctx, stmt); err != nil {
				if ctx.Err() == nil {
					p.opts.Logger.Warn("projection: analyze", "projection", run.pr.Name, "generation", run.gen, "err", err)
				}
				return
			}
		}
	}
	run.analyzed = at
}

// subscription is the subscription that builds one generation of pr.
func (p *Projector[TTx]) subscription(pr *Projection, tables *generationTables) *rawevents.Subscription[TTx] {
	// apply runs the handler on events and brings what the database does
	// not keep up to date by itself (pending writes, full-text indexes)
	// up to date before the transaction commits.
	apply := func(ctx context.Context, tx TTx, events []event.Event) error {
		if !tables.indexed.Load() {
			rawevents.OnCommit(ctx, func() {
				select {
				case p.built <- struct{}{}:
				default:
				}
			})
		}
		ptx := &Tx{x: p.wrap(tx), d: p.d, tables: tables}
		defer ptx.wait() //nolint:errcheck // a handler's error ends the batch: the writer is only stopped before the transaction
		for _, e := range events {
			if err := pr.Handle(ctx, ptx, e); err != nil {
				return err
			}
		}
		return ptx.flush(ctx)
	}
	state := p.read
	if p.read == p.log {
		state = nil
	}
	return &rawevents.Subscription[TTx]{
		Name: subscriptionName(pr.Name, tables.gen),
		Handle: func(ctx context.Context, tx TTx, e event.Event) error {
			return apply(ctx, tx, []event.Event{e})
		},
		HandleBatch: apply,
		Filter: func(e event.Event) bool {
			return !strings.HasPrefix(e.StreamID, rawevents.SystemStreamPrefix) && pr.wants(e)
		},
		Key: pr.Key, Partitions: pr.Partitions, BatchSize: cmp.Or(pr.BatchSize, 500), MaxAttempts: pr.MaxAttempts,
		Backoff: pr.Backoff, Strict: pr.Strict, Lease: p.opts.Lease, Owner: p.opts.Owner, Logger: p.opts.Logger, State: state,
	}
}

// start runs a generation's subscription; p.mu is held.
func (p *Projector[TTx]) start(ctx context.Context, pr *Projection, g *generation) error {
	gen := g.Generation
	tables := p.physicalTables(pr, gen)
	if g.Indexed {
		tables.indexed.Store(true)
	}
	sub, err := rawevents.NewSubscriber(p.log, p.subscription(pr, tables))
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	run := &generationRun[TTx]{sub: sub, pr: pr, gen: gen, tables: tables, cancel: cancel, done: make(chan struct{})}
	p.running[subscriptionName(pr.Name, gen)] = run
	go func() {
		defer close(run.done)
		err := sub.Run(rctx)
		switch {
		case err == nil || rctx.Err() != nil:
		case errors.Is(err, rawevents.ErrStrictStop):
			p.opts.Logger.Error("projection stopped", "projection", pr.Name, "generation", gen, "err", err)
			p.failedMu.Lock()
			p.failed[pr.Name] = err
			p.failedMu.Unlock()
		default:
			p.opts.Logger.Warn("projection stopped; starting it again", "projection", pr.Name, "generation", gen, "err", err)
		}
	}()
	return nil
}

// failure returns why a projection stopped for good, or nil.
func (p *Projector[TTx]) failure(name string) error {
	p.failedMu.Lock()
	defer p.failedMu.Unlock()
	return p.failed[name]
}

func (p *Projector[TTx]) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for sub, run := range p.running {
		run.cancel()
		<-run.done
		delete(p.running, sub)
	}
}
