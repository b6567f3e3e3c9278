package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBenchIngest runs "bench ingest" with tiny bounds on SQLite: it prints
// a row per scenario, both target ratios, no errors, and leaves nothing
// behind.
func TestBenchIngest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.execute(t.Context(), "", "bench", "ingest", "--duration", "200ms", "--max-events", "200", "--clients", "1,2")
	if res.err != nil {
		t.Fatalf("bench ingest: %v\nstdout:\n%s\nstderr:\n%s", res.err, res.stdout, res.stderr)
	}
	out := res.stdout
	t.Logf("\n%s", out)
	for _, row := range []string{
		`store append, 1/call +1 `, `store append, 100/call +1 `,
		`HTTP single +1 `, `HTTP single +2 `, `HTTP batch100 +1 `, `HTTP batch100 +2 `,
	} {
		re := regexp.MustCompile(`(?m)^` + row + `.* 0$`) // the last column: errors
		if !re.MatchString(out) {
			t.Errorf("no row %q with 0 errors", row)
		}
	}
	for _, ratio := range []string{
		`HTTP batch100 \(best: [12] clients\) / store append 100/call = [0-9,]+ / [0-9,]+ = [0-9.]+x  \(target >= 0.6x\)  (met|MISSED)`,
		`HTTP single at 2 clients / store append 1/call = [0-9,]+ / [0-9,]+ = [0-9.]+x  \(target >= 3x\)  (met|MISSED)`,
		`note: measured at 2 clients`,
		`(?m)^errors: 0$`,
	} {
		if !regexp.MustCompile(ratio).MatchString(out) {
			t.Errorf("no line matching %q", ratio)
		}
	}
	if !strings.Contains(res.stderr, "bench: HTTP batch100, 2 client(s)") {
		t.Errorf("stderr shows no progress: %q", res.stderr)
	}
	// The fresh stores are removed, and the --store path is never written.
	entries, err := os.ReadDir(filepath.Dir(b.store))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestBenchIngestJSON checks the machine-readable output: one result per
// scenario, then the summary with both ratios.
func TestBenchIngestJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := b.run(t, "bench", "ingest", "--json", "--duration", "100ms", "--max-events", "100", "--clients", "1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 { // 2 store scenarios, 2 HTTP shapes × 1 client count, the summary
		t.Fatalf("%d lines, want 5:\n%s", len(lines), out)
	}
	for _, line := range lines[:4] {
		var r BenchResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Backend != "sqlite" || r.Errors != 0 || r.Events == 0 || r.EventsPerSec <= 0 || r.P99Ms < r.P50Ms {
			t.Errorf("result %+v", r)
		}
	}
	var s BenchSummary
	if err := json.Unmarshal([]byte(lines[4]), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Ratios) != 2 || s.Errors != 0 || s.Ratios[0].Ratio <= 0 || s.Ratios[1].Ratio <= 0 {
		t.Errorf("summary %+v", s)
	}
}

func TestBenchIngestValidate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.execute(t.Context(), "", "bench", "ingest", "--duration", "0s", "--max-events", "10", "--clients", "0")
	if res.err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--duration must be positive", "--max-events must be at least 100", "--clients 0"} {
		if !strings.Contains(res.err.Error(), want) {
			t.Errorf("error %q does not say %q", res.err, want)
		}
	}
}

// TestBenchConn checks the load generator's connection: it keeps one
// connection for many requests, reads a failure's answer, opens a new
// connection when the server closes the one it had (after an answer, or
// while it was idle), and ends a request in flight when its context ends.
func TestBenchConn(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch string(body) {
		case "bad":
			http.Error(w, "bad  request\nbody", http.StatusBadRequest)
		case "bye":
			w.Header().Set("Connection", "close")
		case "wait":
			<-r.Context().Done()
		default:
			if r.Header.Get("Content-Type") != "application/cloudevents+json" || r.URL.Path != "/v1/events" {
				http.Error(w, "wrong request", http.StatusTeapot)
				return
			}
			_, _ = io.WriteString(w, `{"position":1}`)
		}
	}))
	srv.Config.IdleTimeout = 100 * time.Millisecond
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := &benchConn{ctx: ctx, addr: srv.Listener.Addr().String(), path: "/v1/events"}
	defer c.close()
	for i, tt := range []struct {
		body   string
		idle   time.Duration // before the request
		status int
		msg    string
		conns  int32
	}{
		{body: "ok", status: http.StatusOK, conns: 1},
		{body: "ok", status: http.StatusOK, conns: 1},
		{body: "bad", status: http.StatusBadRequest, msg: "bad request body", conns: 1},
		{body: "bye", status: http.StatusOK, conns: 1},
		{body: "ok", status: http.StatusOK, conns: 2},
		{body: "ok", idle: 400 * time.Millisecond, status: http.StatusOK, conns: 3},
	} {
		time.Sleep(tt.idle)
		status, msg, err := c.post("application/cloudevents+json", []byte(tt.body))
		if err != nil || status != tt.status || msg != tt.msg || conns.Load() != tt.conns {
			t.Errorf("post %d (%s) = %d, %q, %v on %d connections; want %d, %q on %d", i, tt.body, status, msg, err, conns.Load(), tt.status, tt.msg, tt.conns)
		}
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, _, err := c.post("application/cloudevents+json", []byte("wait")); !errors.Is(err, context.Canceled) {
		t.Errorf("post cancelled in flight: %v, want context.Canceled", err)
	}
	if _, _, err := c.post("application/cloudevents+json", []byte("ok")); !errors.Is(err, context.Canceled) {
		t.Errorf("post after cancel: %v, want context.Canceled", err)
	}
}
