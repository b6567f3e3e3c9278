package domain_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/pgtest"
)

// workerSchemaEnv tells a child test process to run as a worker on the
// store in that PostgreSQL schema.
const workerSchemaEnv = "RAWEVENTS_TEST_WORKER_SCHEMA"

func TestMain(m *testing.M) {
	if schema := os.Getenv(workerSchemaEnv); schema != "" {
		if err := runWorker(schema); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The scale-out application: raw events {key, seq} become commands
// Count{key, seq} on a counter per key, which refuses any seq but the
// next one. A raw event processed twice, or out of order within its key,
// shows as a refused command and a counter that never reaches the end.

type Counted struct {
	Seq int `json:"seq"`
}

type Count struct {
	Key string
	Seq int
}

func (c Count) AggregateID() string { return c.Key }

type counterState struct {
	Last int `json:"last"`
}

var errOutOfOrder = errors.New("out of order")

type seqData struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

func counterProcessor[TTx any](store *rawevents.Store[TTx], rejected func(string)) (*domain.Processor[TTx], error) {
	types := domain.NewTypes()
	if err := domain.Register[Counted](types, "counted", 1); err != nil {
		return nil, err
	}
	repo, err := domain.NewRepository(store, &domain.Aggregate[counterState]{
		Name: "counter", Types: types, SnapshotEvery: 25,
		Apply: func(s counterState, e any) counterState { return counterState{Last: e.(Counted).Seq} },
	})
	if err != nil {
		return nil, err
	}
	router := domain.NewRouter[TTx]()
	if err := domain.Route(router, repo, func(s counterState, c Count) ([]any, error) {
		if c.Seq != s.Last+1 {
			return nil, fmt.Errorf("%w: %s got %d after %d", errOutOfOrder, c.Key, c.Seq, s.Last)
		}
		return []any{Counted{Seq: c.Seq}}, nil
	}); err != nil {
		return nil, err
	}
	return &domain.Processor[TTx]{
		Name: "counter", Types: []string{"seq"}, Router: router,
		Key: func(raw event.Event) string {
			var d seqData
			_ = domain.RawData(raw, &d)
			return d.Key
		},
		Process: func(_ context.Context, raw event.Event) ([]domain.Command, error) {
			var d seqData
			if err := domain.RawData(raw, &d); err != nil {
				return nil, err
			}
			return []domain.Command{Count{Key: d.Key, Seq: d.Seq}}, nil
		},
		Rejected: func(_ event.Event, _ domain.Command, err error) { rejected(err.Error()) },
	}, nil
}

// runWorker is the child process: it works the counter processor's share
// of partitions until SIGTERM.
func runWorker(schema string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	d, err := postgres.Open(ctx, pgtest.URL(), &postgres.Config{Schema: schema})
	if err != nil {
		return err
	}
	defer d.Close()
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		return err
	}
	p, err := counterProcessor(store, func(msg string) { fmt.Println("rejected:", msg) })
	if err != nil {
		return err
	}
	sub, err := p.Subscription(&rawevents.Subscription[pgx.Tx]{Partitions: 12, Lease: 2 * time.Second, BatchSize: 200})
	if err != nil {
		return err
	}
	s, err := rawevents.NewSubscriber(store, sub)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// TestScaleOutWithKill runs three worker processes on 50,000 raw events
// across 500 keys, kills one with SIGKILL mid-run and starts it again:
// every raw event is processed, no domain event is lost or doubled, and
// each key's events take effect in log order.
func TestScaleOutWithKill(t *testing.T) {
	t.Parallel()
	const keys, perKey, batch = 500, 100, 1000
	ctx := context.Background()
	pool := pgtest.Pool(t)
	schema := pgtest.Schema(t, pool)
	d, err := postgres.New(pool, &postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), workerSchemaEnv+"="+schema)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill() //nolint:errcheck // may have exited
			cmd.Wait()         //nolint:errcheck // killed or stopped
			if s := out.String(); strings.Contains(s, "rejected") || strings.Contains(s, "worker:") {
				t.Errorf("worker output:\n%s", s)
			}
		})
		return cmd
	}
	workers := []*exec.Cmd{start(), start(), start()}

	total := keys * perKey
	for sent := 0; sent < total; sent += batch {
		var events []event.Proposed
		for n := sent; n < sent+batch; n++ {
			key, seq := fmt.Sprintf("k%03d", n%keys), n/keys+1
			id := fmt.Sprintf("%s-%d", key, seq)
			envelope := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"gen","type":"seq","datacontenttype":"application/json","data":{"key":%q,"seq":%d}}`, id, key, seq)
			events = append(events, event.Proposed{ID: ingest.EventID("gen", id), Type: "seq", Data: []byte(envelope),
				Metadata: event.Metadata{Origin: &event.Origin{Source: "gen", ID: id}}})
		}
		if _, err := store.Append(ctx, ingest.StreamID("gen"), event.Any, events...); err != nil {
			t.Fatal(err)
		}
		if sent == total/2 {
			// Kill one worker mid-batch, and start a new one.
			waitFor(t, "work under way", func() bool {
				st, err := store.SubscriptionStatus(ctx, "processor:counter")
				return err == nil && st.Position > 0
			})
			if err := workers[1].Process.Kill(); err != nil {
				t.Fatal(err)
			}
			workers[1].Wait() //nolint:errcheck // killed
			workers[1] = start()
		}
	}
	waitFor(t, "every raw event processed", func() bool {
		st, err := store.SubscriptionStatus(ctx, "processor:counter")
		return err == nil && st.Lag == 0 && st.Head >= int64(total)
	})
	for _, w := range workers {
		if err := w.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := w.Wait(); err != nil {
			t.Fatalf("worker exit: %v", err)
		}
	}

	st, err := store.SubscriptionStatus(ctx, "processor:counter")
	if err != nil {
		t.Fatal(err)
	}
	if st.Parked != 0 {
		t.Fatalf("%d raw events parked", st.Parked)
	}
	var domainEvents int
	for k := range keys {
		stream := fmt.Sprintf("counter-k%03d", k)
		events, err := store.ReadStream(ctx, stream, &rawevents.ReadStreamOpts{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != perKey {
			t.Fatalf("%s has %d events, want %d", stream, len(events), perKey)
		}
		var lastOrigin int64
		for i, e := range events {
			want := fmt.Sprintf(`{"seq":%d}`, i+1)
			if string(e.Data) != want || e.Metadata.Origin == nil || e.Metadata.Origin.Position <= lastOrigin {
				t.Fatalf("%s v%d: %s from raw position %+v, want %s after raw position %d", stream, e.StreamVersion, e.Data, e.Metadata.Origin, want, lastOrigin)
			}
			lastOrigin = e.Metadata.Origin.Position
		}
		domainEvents += len(events)
	}
	t.Logf("%d raw events, %d domain events, 3 workers, one killed and restarted", total, domainEvents)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
