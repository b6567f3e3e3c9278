package projection_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/rawtest"
)

// childEnv holds a childConfig as JSON: a test binary started with it
// runs as a projector process (see runChild) instead of running tests.
const childEnv = "RAWEVENTS_TEST_PROJECTOR_CHILD"

// childConfig says which stores a projector child opens and how it
// runs: SQLite files (the log and the read models) or a PostgreSQL
// schema holding both.
type childConfig struct {
	SQLiteLog  string        `json:"sqlite_log,omitempty"`
	SQLiteRead string        `json:"sqlite_read,omitempty"`
	Schema     string        `json:"schema,omitempty"`
	Owner      string        `json:"owner"`
	Partitions int           `json:"partitions"`
	Lease      time.Duration `json:"lease"`
}

func TestMain(m *testing.M) {
	if raw := os.Getenv(childEnv); raw != "" {
		if err := runChild(raw); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild is a projector process: it runs the counts projection until
// SIGTERM (the tests also end it with SIGKILL).
func runChild(raw string) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// The test holds this process's stdin open: at EOF the test process
	// is gone (killed at a timeout, say), and this one ends too.
	ctx, orphaned := context.WithCancel(ctx)
	go func() {
		io.Copy(io.Discard, os.Stdin) //nolint:errcheck // any end will do
		orphaned()
	}()
	opts := &projection.Options{Owner: cfg.Owner, Lease: cfg.Lease,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if cfg.Schema != "" {
		d, err := postgres.Open(ctx, pgtest.URL(), &postgres.Config{Schema: cfg.Schema})
		if err != nil {
			return err
		}
		store, err := rawevents.NewStore(ctx, d, nil)
		if err != nil {
			d.Close()
			return err
		}
		defer store.Close()
		return runProjector(ctx, store, store, opts, cfg.Partitions)
	}
	logDriver, err := sqlite.Open(cfg.SQLiteLog, nil)
	if err != nil {
		return err
	}
	log, err := rawevents.NewStore(ctx, logDriver, nil)
	if err != nil {
		logDriver.Close()
		return err
	}
	defer log.Close()
	readDriver, err := sqlite.Open(cfg.SQLiteRead, nil)
	if err != nil {
		return err
	}
	read, err := rawevents.NewStore(ctx, readDriver, nil)
	if err != nil {
		readDriver.Close()
		return err
	}
	defer read.Close()
	return runProjector(ctx, log, read, opts, cfg.Partitions)
}

func runProjector[TTx any](ctx context.Context, log, read *rawevents.Store[TTx], opts *projection.Options, partitions int) error {
	p, err := projection.New(log, read, opts, counts(partitions))
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// countsSub is the subscription that builds the first generation of the
// counts projection (the projector names it so).
const countsSub = "projection:counts:g1"

var words = []string{"apple", "banana", "cherry", "damson", "elder"}

// counts is the projection of the crash tests: a row per stream with how
// many of its events were applied (n, by tx.Add) and the seq of the last
// one. The handler refuses any seq but the next one, so an event applied
// twice, or one lost, gets its stream's next event parked: after a run,
// nothing is parked and each n is the stream's number of events.
func counts(partitions int) *projection.Projection {
	return &projection.Projection{
		Name:    "counts",
		Version: 1,
		Types:   []string{"counted"},
		Tables: []projection.Table{{
			Name: "counter",
			Columns: []projection.Column{
				{Name: "stream", Type: projection.Text},
				{Name: "n", Type: projection.Integer, Index: true},
				{Name: "last", Type: projection.Integer},
				{Name: "note", Type: projection.Text},
			},
			Key:    []string{"stream"},
			Search: []string{"note"},
		}},
		Partitions:  partitions, // by stream, the default key
		BatchSize:   100,        // commits often, so that kills fall between batches too
		MaxAttempts: 2,
		Backoff:     func(int) time.Duration { return time.Millisecond },
		Handle: func(ctx context.Context, tx *projection.Tx, e event.Event) error {
			var d struct {
				Seq int64 `json:"seq"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return err
			}
			row, err := tx.Get(ctx, "counter", e.StreamID)
			if err != nil {
				return err
			}
			var last int64
			if row != nil {
				last = row["last"].(int64)
			}
			if d.Seq != last+1 {
				return fmt.Errorf("stream %s: seq %d after %d", e.StreamID, d.Seq, last)
			}
			// One statement: n counts the events applied, last moves by
			// seq-last (1), and the note is set.
			note := fmt.Sprintf("%s counted %d %s", e.StreamID, d.Seq, words[d.Seq%int64(len(words))])
			return tx.Add(ctx, "counter", projection.Row{"stream": e.StreamID, "n": 1, "last": d.Seq - last, "note": note})
		},
	}
}

// appendCounted appends perStream events {"seq": 1..perStream} to each of
// streams streams s-000, s-001, ..., interleaved: each transaction
// appends the next chunk events of every stream. It returns the head.
func appendCounted[TTx any](t *testing.T, store *rawevents.Store[TTx], streams, perStream, chunk int) int64 {
	t.Helper()
	ctx := context.Background()
	var head int64
	for from := 1; from <= perStream; from += chunk {
		appends := make([]rawevents.StreamAppend, streams)
		for s := range streams {
			a := rawevents.StreamAppend{StreamID: fmt.Sprintf("s-%03d", s), Expected: event.Any}
			for seq := from; seq < from+chunk && seq <= perStream; seq++ {
				a.Events = append(a.Events, event.Proposed{Type: "counted", Data: fmt.Appendf(nil, `{"seq":%d}`, seq)})
			}
			appends[s] = a
		}
		err := store.Driver().InTx(ctx, func(tx TTx) error {
			res, err := store.AppendManyTx(ctx, tx, appends)
			if err == nil {
				head = res[len(res)-1].LastPosition()
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return head
}

// child is a projector process.
type child struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser // open while the test runs; see runChild
	out   *lockedBuffer
	ended bool
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startChild re-executes the test binary as a projector process with cfg.
// What it prints is checked when the test ends: a data race, an error
// that ends it, a parked event or a stopped projection fail the test.
func startChild(t *testing.T, cfg childConfig) *child {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, name: cfg.Owner, cmd: exec.Command(os.Args[0], "-test.run=^$"), out: &lockedBuffer{}}
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !c.ended {
			c.cmd.Process.Kill() //nolint:errcheck // may have exited
			c.cmd.Wait()         //nolint:errcheck // killed
		}
		out := c.out.String()
		for _, bad := range []string{"DATA RACE", "child:", "event parked", "projection stopped", "panic:"} {
			if i := strings.Index(out, bad); i >= 0 {
				t.Errorf("child %s printed %q:\n%s", c.name, bad, out[max(i-1000, 0):min(i+3000, len(out))])
				break
			}
		}
	})
	return c
}

// kill ends the child with SIGKILL: no deferred function, no release of
// its leases, a transaction cut wherever it was.
func (c *child) kill() {
	c.t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		c.t.Fatalf("kill %s: %v", c.name, err)
	}
	c.cmd.Wait() //nolint:errcheck // killed
	c.ended = true
}

// stop ends the child with SIGTERM, which it must survive cleanly.
func (c *child) stop() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("stop %s: %v", c.name, err)
	}
	err := c.cmd.Wait()
	c.ended = true
	if err != nil {
		c.t.Fatalf("child %s: %v\n%s", c.name, err, c.out.String())
	}
}

// within waits until cond holds, failing after timeout.
func within(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// raceScaled returns n, or underRace when the test binary was built with
// the race detector. The tests' processes are that binary too, and with
// it projecting runs 5 (PostgreSQL) to 30 (SQLite, whose driver is Go
// translated from C) times slower: 500 streams of 100 events would take
// minutes on SQLite.
func raceScaled(n, underRace int) int {
	if raceEnabled {
		return underRace
	}
	return n
}

var raceEnabled = func() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}()

// TestCrashExactlyOnce kills a projector process with SIGKILL at random
// points while it projects 50,000 events (under the race detector 5,000
// on SQLite, 15,000 on PostgreSQL), restarting it each time, and lets a
// last one finish: no event is lost or applied twice (each stream's
// counter is its number of events and nothing is parked), and the read
// model equals a rebuild from scratch.
func TestCrashExactlyOnce(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		cfg := childConfig{SQLiteLog: filepath.Join(dir, "events.db"), SQLiteRead: filepath.Join(dir, "read.db")}
		crashExactlyOnce(t, rawtest.SQLiteFile(t, cfg.SQLiteLog), rawtest.SQLiteFile(t, cfg.SQLiteRead), cfg, raceScaled(100, 10))
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		store := rawtest.Postgres(t)
		crashExactlyOnce(t, store, store, childConfig{Schema: store.Driver().(*postgres.Driver).Schema()}, raceScaled(100, 30))
	})
}

func crashExactlyOnce[TTx any](t *testing.T, log, read *rawevents.Store[TTx], cfg childConfig, events int) {
	const streams = 500
	ctx := context.Background()
	began := time.Now()
	head := appendCounted(t, log, streams, events, 25)
	t.Logf("appended %d events in %v", head, time.Since(began))

	// A killed process holds its lease until it lapses; a short one lets
	// the next process take over soon.
	cfg.Partitions, cfg.Lease = 1, time.Second
	p, err := projection.New(log, read, &projection.Options{Lease: cfg.Lease}, counts(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	stored := func() int64 {
		t.Helper()
		at, err := p.Position(ctx, "counts")
		if err != nil {
			t.Fatal(err)
		}
		return at
	}

	kills, midRun := 3+rand.IntN(3), 0
	for i := range kills {
		cfg.Owner = fmt.Sprintf("crash-%d", i)
		c := startChild(t, cfg)
		// Count the delay from when the process holds the partition, so
		// that it is killed while working, not while waiting for the
		// lease of the process killed before.
		within(t, 30*time.Second, cfg.Owner+" holds the partition", func() bool {
			st, err := read.SubscriptionStatus(ctx, countsSub)
			return err == nil && st.Partitions[0].Owner == cfg.Owner
		})
		from := stored()
		delay := 100*time.Millisecond + rand.N(700*time.Millisecond)
		time.Sleep(delay)
		c.kill()
		at := stored()
		if at < head {
			midRun++ // killed while it had work left
		}
		t.Logf("kill %d after %v: checkpoint %d -> %d of %d", i+1, delay.Round(time.Millisecond), from, at, head)
	}
	if midRun == 0 {
		t.Fatal("every kill came after the work was done: the test tests nothing")
	}

	cfg.Owner = "crash-last"
	last := startChild(t, cfg)
	within(t, 3*time.Minute, "the last process reaches the head", func() bool { return stored() >= head })
	last.stop()
	t.Logf("%d kills, %d of them mid-run; projected in %v", kills, midRun, time.Since(began))

	// Rebuild from scratch beside the live read model, in this process.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	gen, err := p.StartRebuild(ctx, "counts", false)
	if err != nil {
		t.Fatal(err)
	}
	var st *projection.Status
	within(t, 3*time.Minute, "the rebuild catches up", func() bool {
		st, err = p.Status(ctx, "counts")
		if err != nil {
			t.Fatal(err)
		}
		return st.Rebuild != nil && st.Rebuild.Progress == 1 && st.Rebuild.Position >= head
	})
	if st.Parked != 0 || st.Lag != 0 || st.Generation != 1 || st.Rebuild.Generation != gen {
		t.Fatalf("status = %+v, rebuild %+v", st, st.Rebuild)
	}
	if sub, err := read.SubscriptionStatus(ctx, fmt.Sprintf("projection:counts:g%d", gen)); err != nil || sub.Parked != 0 {
		t.Fatalf("rebuild subscription: %+v, %v", sub, err)
	}
	liveSum, err := p.Checksum(ctx, "counts", st.Generation)
	if err != nil {
		t.Fatal(err)
	}
	rebuiltSum, err := p.Checksum(ctx, "counts", gen)
	if err != nil {
		t.Fatal(err)
	}
	if liveSum != rebuiltSum {
		diff, err := p.Compare(ctx, "counts")
		t.Fatalf("live checksum %s != rebuilt %s: %+v, %v", liveSum, rebuiltSum, diff, err)
	}
	checkCounters(t, p, eventCounts(streams, int64(events)))
	t.Logf("rebuilt and compared in %v", time.Since(began))
}

// checkCounters checks that the live read model has a row per stream,
// s-000, s-001, ..., whose counter and last seq are the stream's number
// of events, want[i] for stream i, and that its search finds them.
func checkCounters(t *testing.T, p interface {
	List(ctx context.Context, name, table string, q *projection.Query) (*projection.Page, error)
}, want []int64) {
	t.Helper()
	ctx := context.Background()
	list := func(q projection.Query) []projection.Row {
		t.Helper()
		var rows []projection.Row
		q.Limit = projection.MaxLimit
		for {
			page, err := p.List(ctx, "counts", "counter", &q)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, page.Rows...)
			if q.Cursor = page.Next; q.Cursor == "" {
				return rows
			}
		}
	}
	rows := list(projection.Query{})
	if len(rows) != len(want) {
		t.Fatalf("%d counters, want %d", len(rows), len(want))
	}
	notes := map[string]int{}
	for i, row := range rows {
		if stream := fmt.Sprintf("s-%03d", i); row["stream"] != stream || row["n"] != want[i] || row["last"] != want[i] {
			t.Fatalf("counter %d = %v, want %s at %d", i, row, stream, want[i])
		}
		notes[words[want[i]%int64(len(words))]]++
	}
	for _, w := range words {
		if found := list(projection.Query{Search: w}); len(found) != notes[w] {
			t.Fatalf("search %q found %d rows, want %d", w, len(found), notes[w])
		}
	}
}

// eventCounts returns how many events each of n streams has.
func eventCounts(n int, each int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = each
	}
	return out
}

// TestFailoverPostgres runs two projector processes that share a
// projection's four partitions, kills one with SIGKILL while both work:
// the other takes its partitions over (once the killed one's session has
// ended, or its lease lapsed), catches up, and no event is lost or applied
// twice.
func TestFailoverPostgres(t *testing.T) {
	t.Parallel()
	const streams, events, partitions, lease = 400, 50, 4, 2 * time.Second
	ctx := context.Background()
	store := rawtest.Postgres(t)
	cfg := childConfig{Schema: store.Driver().(*postgres.Driver).Schema(), Partitions: partitions, Lease: lease}
	p, err := projection.New(store, store, &projection.Options{Lease: lease}, counts(partitions))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	status := func() *rawevents.SubscriptionStatus {
		t.Helper()
		st, err := store.SubscriptionStatus(ctx, countsSub)
		if err != nil && !errors.Is(err, event.ErrSubscriptionNotFound) {
			t.Fatal(err)
		}
		return st
	}
	owned := func(st *rawevents.SubscriptionStatus, owner string) (n int) {
		for _, part := range st.Partitions {
			if part.Owner == owner {
				n++
			}
		}
		return n
	}

	cfg.Owner = "failover-a"
	a := startChild(t, cfg)
	cfg.Owner = "failover-b"
	b := startChild(t, cfg)
	within(t, 30*time.Second, "the processes share the partitions", func() bool {
		st := status()
		return st != nil && owned(st, "failover-a") == 2 && owned(st, "failover-b") == 2
	})

	began := time.Now()
	head := appendCounted(t, store, streams, events, 10)
	t.Logf("appended %d events in %v", head, time.Since(began))
	within(t, time.Minute, "failover-a is under way", func() bool {
		for _, part := range status().Partitions {
			if part.Owner == "failover-a" && part.Position > 0 {
				return true
			}
		}
		return false
	})
	time.Sleep(rand.N(300 * time.Millisecond))
	before := status()
	a.kill()
	killed := time.Now()
	var lapse time.Time // when the last of a's leases seen before the kill lapses
	working := false
	for _, part := range before.Partitions {
		if part.Owner == "failover-a" {
			if part.LeaseUntil.After(lapse) {
				lapse = part.LeaseUntil
			}
			working = working || part.Position < head
		}
	}
	t.Logf("killed failover-a at %+v", before.Partitions)
	if !working {
		t.Fatal("failover-a was done before it was killed: the test tests nothing")
	}

	within(t, time.Minute, "failover-b holds every partition", func() bool { return owned(status(), "failover-b") == partitions })
	took := time.Now()
	t.Logf("failover-b took over %v after the kill (failover-a's lease lapsed %v after it)",
		took.Sub(killed).Round(time.Millisecond), lapse.Sub(killed).Round(time.Millisecond))

	if err := p.WaitFor(ctx, "counts", head, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	res, err := store.Append(ctx, fmt.Sprintf("s-%03d", streams), event.Any, event.Proposed{Type: "counted", Data: []byte(`{"seq":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, "counts", res.LastPosition(), time.Minute); err != nil {
		t.Fatal(err)
	}
	st, err := p.Status(ctx, "counts")
	if err != nil || st.Lag != 0 || st.State != projection.StateLive || st.Parked != 0 {
		t.Fatalf("status = %+v, %v", st, err)
	}
	b.stop()
	checkCounters(t, p, append(eventCounts(streams, events), 1))
	t.Logf("caught up %v after the kill", time.Since(killed).Round(time.Millisecond))
}
