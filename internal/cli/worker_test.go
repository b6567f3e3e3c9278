package cli

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/tasks"
)

// echoApp is an application with one subscription: every "tick" event is
// answered by a "tock" in stream "tocks".
func echoApp() *App {
	return &App{SQLite: echoSetup[*sql.Tx], Postgres: echoSetup[pgx.Tx]}
}

func echoSetup[TTx any](_ context.Context, store *rawevents.Store[TTx]) ([]*rawevents.Subscription[TTx], error) {
	return []*rawevents.Subscription[TTx]{{
		Name:   "echo",
		Filter: func(e event.Event) bool { return e.Type == "tick" },
		Handle: func(ctx context.Context, tx TTx, e event.Event) error {
			_, err := store.AppendTx(ctx, tx, "tocks", event.Any, event.Proposed{Type: "tock", Metadata: event.Metadata{CausationID: e.ID.String()}})
			return err
		},
		Lease: time.Second,
	}}, nil
}

// syncWriter is an io.Writer safe for the server's goroutines and the
// test's reads.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestServeRunsWorkers(t *testing.T) {
	t.Parallel()
	for _, roles := range [][]string{{"worker"}, {"api,worker"}} {
		t.Run(strings.Join(roles, "+"), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "events.db")
			ready := make(chan string, 1)
			opts := &ServeOpts{
				GlobalOpts: GlobalOpts{Store: path}, Addr: "127.0.0.1:0", Roles: roles, App: echoApp(),
				ShutdownTimeout: 5 * time.Second, Ready: ready,
			}
			if err := opts.Validate(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := &syncWriter{}
			done := make(chan error, 1)
			go func() { done <- opts.Run(ctx, out) }()
			addr := <-ready
			if api := addr != ""; api != strings.Contains(roles[0], "api") {
				t.Fatalf("roles %v, listening on %q", roles, addr)
			}
			store, _, err := openStore(ctx, path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			for range 3 {
				if _, err := store.Append(ctx, "clock", event.Any, event.Proposed{Type: "tick"}); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				info, err := store.StreamInfo(ctx, "tocks")
				if err == nil && info.Version == 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the worker did not answer the ticks (%v); output:\n%s", err, out)
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}
			if !strings.Contains(out.String(), "worker running echo") || !strings.Contains(out.String(), "rawevents stopped") {
				t.Fatalf("output:\n%s", out)
			}
		})
	}
}

func TestServeRolesValidate(t *testing.T) {
	t.Parallel()
	opts := &ServeOpts{GlobalOpts: GlobalOpts{Store: "x.db"}, Roles: []string{"api,reporter"}, ShutdownTimeout: time.Second}
	err := opts.Validate()
	if err == nil || !strings.Contains(err.Error(), `"reporter" is not a role`) {
		t.Fatalf("validate: %v", err)
	}
	// A worker-only process listens nowhere, so it needs no tokens even
	// with a public address.
	opts = &ServeOpts{GlobalOpts: GlobalOpts{Store: "x.db"}, Roles: []string{"worker"}, Addr: "0.0.0.0:8080", ShutdownTimeout: time.Second}
	if err := opts.Validate(); err != nil {
		t.Fatalf("worker on a public address: %v", err)
	}
}

type noteArgs struct {
	Tick string `json:"tick"`
}

func (noteArgs) Kind() string { return "note" }

type noteWorker struct {
	river.WorkerDefaults[noteArgs]
	done *atomic.Int32
}

func (w *noteWorker) Work(context.Context, *river.Job[noteArgs]) error {
	w.done.Add(1)
	return nil
}

// TestServeRunsTasks: a subscription enqueues a task in its batch's
// transaction (the outbox); the worker role works it; the API role serves
// the task queue's UI.
func TestServeRunsTasks(t *testing.T) {
	t.Parallel()
	var done atomic.Int32
	app := &App{
		SQLite: func(_ context.Context, store *rawevents.Store[*sql.Tx]) ([]*rawevents.Subscription[*sql.Tx], error) {
			queue, err := tasks.ForSQLite(store.Driver().(*sqlite.Driver), nil)
			if err != nil {
				return nil, err
			}
			return []*rawevents.Subscription[*sql.Tx]{{
				Name:   "notify",
				Filter: func(e event.Event) bool { return e.Type == "tick" },
				Handle: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
					_, err := queue.InsertTx(ctx, tx, noteArgs{Tick: e.ID.String()}, nil)
					return err
				},
			}}, nil
		},
		Tasks: func(w *river.Workers) error { return river.AddWorkerSafely(w, &noteWorker{done: &done}) },
	}
	path := filepath.Join(t.TempDir(), "events.db")
	ready := make(chan string, 1)
	opts := &ServeOpts{GlobalOpts: GlobalOpts{Store: path}, Addr: "127.0.0.1:0", App: app, ShutdownTimeout: 5 * time.Second, Ready: ready}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncWriter{}
	errc := make(chan error, 1)
	go func() { errc <- opts.Run(ctx, out) }()
	addr := <-ready
	store, _, err := openStore(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for range 2 {
		if _, err := store.Append(ctx, "clock", event.Any, event.Proposed{Type: "tick"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for done.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 tasks ran; output:\n%s", done.Load(), out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := http.Get("http://" + addr + "/admin/river/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("tasks UI: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := done.Load(); n != 2 {
		t.Fatalf("%d tasks ran, want 2", n)
	}
}
