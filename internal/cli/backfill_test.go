package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/pgtest"
)

// sourceAPI is a source system's API: n items served by page of size,
// with the offset of the next page as cursor (?after=), in the shape
// {"data": [...], "next": "40", "total": n}.
type sourceAPI struct {
	n, size int
	srv     *httptest.Server
	onPage  func(cursor string) // called before a page is answered

	mu      sync.Mutex
	cursors []string
}

func newSourceAPI(t *testing.T, n, size int) *sourceAPI {
	t.Helper()
	a := &sourceAPI{n: n, size: size}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cursor := r.URL.Query().Get("after")
		a.mu.Lock()
		a.cursors = append(a.cursors, cursor)
		a.mu.Unlock()
		if a.onPage != nil {
			a.onPage(cursor)
		}
		from, _ := strconv.Atoi(cursor)
		to := min(from+a.size, a.n)
		var items []string
		for i := from; i < to; i++ {
			items = append(items, fmt.Sprintf(`{"id":"item-%05d","n":%d}`, i, i))
		}
		next := ""
		if to < a.n {
			next = strconv.Itoa(to)
		}
		fmt.Fprintf(w, `{"data":[%s],"next":%q,"total":%d}`, strings.Join(items, ","), next, a.n)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *sourceAPI) asked() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.cursors...)
}

// configFile writes a config file with the backfill "items" of the API
// and returns its path; extra is spliced into the top-level object, and
// source is the backfill's "source" (none when empty).
func (a *sourceAPI) configFile(t *testing.T, source, extra string) string {
	t.Helper()
	bf := map[string]any{"url": a.srv.URL + "/items", "cursor_param": "after", "items": "/data", "next": "/next",
		"total": "/total", "id": "/id", "type_value": "item.created"}
	if source != "" {
		bf["source"] = source
	}
	raw, err := json.Marshal(map[string]any{"backfills": map[string]any{"items": bf}})
	if err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		raw = append(append(raw[:len(raw)-1], ","+extra...), '}')
	}
	path := filepath.Join(t.TempDir(), "rawevents.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawIDs returns the ids of the raw events of source in the store at dsn,
// failing the test on an id stored twice.
func rawIDs(t *testing.T, dsn, source string) []string {
	t.Helper()
	store, _, err := openStore(t.Context(), dsn, false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var ids []string
	seen := map[string]bool{}
	for from := int64(1); ; {
		events, err := store.ReadStream(t.Context(), ingest.StreamID(source), &rawevents.ReadStreamOpts{From: from, Limit: rawevents.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if seen[e.Metadata.Origin.ID] {
				t.Fatalf("%s is stored twice", e.Metadata.Origin.ID)
			}
			seen[e.Metadata.Origin.ID] = true
			ids = append(ids, e.Metadata.Origin.ID)
		}
		if len(events) < rawevents.MaxPageSize {
			return ids
		}
		from = events[len(events)-1].StreamVersion + 1
	}
}

func TestBackfillCommand(t *testing.T) {
	t.Parallel()

	t.Run("RunsOnceThenOnRestart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := newSourceAPI(t, 120, 50)
		cfg := a.configFile(t, "https://api.example", "")
		out := b.run(t, "backfill", "items", "--config", cfg)
		if !strings.HasPrefix(out, "backfill items completed: stored 120, duplicates 0 in 3 pages this run; log position ") {
			t.Errorf("first run printed %q", out)
		}
		if ids := rawIDs(t, b.store, "https://api.example"); len(ids) != 120 || ids[0] != "item-00000" || ids[119] != "item-00119" {
			t.Fatalf("%d raw events", len(ids))
		}
		out = b.run(t, "backfill", "items", "--config", cfg)
		if !strings.HasPrefix(out, "backfill items is complete at ") || !strings.HasSuffix(out, ": 120 items, stored 120, duplicates 0; --restart pulls everything again\n") {
			t.Errorf("second run printed %q", out)
		}
		var sum BackfillSummary
		if err := json.Unmarshal([]byte(b.run(t, "backfill", "items", "--config", cfg, "--restart", "--json")), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.State != backfill.StateCompleted || sum.Runs != 2 || sum.Run.Duplicates != 120 || sum.Run.Stored != 0 || sum.Run.Pages != 3 || sum.Total != 120 {
			t.Errorf("restart summary %+v", sum)
		}
		if n := len(rawIDs(t, b.store, "https://api.example")); n != 120 {
			t.Errorf("%d raw events after the restart, want 120", n)
		}
	})

	t.Run("ResumesAfterCtrlC", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := newSourceAPI(t, 200, 40)
		ctx, cancel := context.WithCancel(t.Context())
		a.onPage = func(cursor string) {
			if cursor == "80" {
				cancel()
			}
		}
		cfg := a.configFile(t, "api", "")
		res := b.execute(ctx, "", "backfill", "items", "--config", cfg)
		if res.err == nil || !errors.Is(res.err, context.Canceled) || !strings.Contains(res.err.Error(), "the next run resumes there") {
			t.Fatalf("interrupted run: %v, want a cancellation", res.err)
		}
		if !strings.HasPrefix(res.stdout, "backfill items stopped (run the same command to resume): stored ") {
			t.Errorf("interrupted run printed %q", res.stdout)
		}
		a.onPage = nil
		out := b.run(t, "backfill", "items", "--config", cfg)
		if !strings.HasPrefix(out, "backfill items: resuming after ") || !strings.Contains(out, "backfill items completed: stored ") {
			t.Errorf("second run printed %q", out)
		}
		if asked := a.asked(); asked[3] != "80" && asked[3] != "120" {
			t.Errorf("cursors asked %v: the second run did not resume", asked)
		}
		if n := len(rawIDs(t, b.store, "api")); n != 200 {
			t.Errorf("%d raw events, want 200", n)
		}
	})

	t.Run("SourceOfTheWebhookOfTheSameName", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := newSourceAPI(t, 10, 50)
		cfg := a.configFile(t, "", `"sources": {"items": {"source": "https://items.example", "secret": "0123456789abcdef"}}`)
		b.run(t, "backfill", "items", "--config", cfg)
		if n := len(rawIDs(t, b.store, "https://items.example")); n != 10 {
			t.Errorf("%d raw events under the webhook's source, want 10", n)
		}
	})

	t.Run("StoreFromTheConfigFile", func(t *testing.T) {
		t.Parallel()
		a := newSourceAPI(t, 10, 50)
		store := filepath.Join(t.TempDir(), "from-config.db")
		cfg := a.configFile(t, "api", fmt.Sprintf(`"store": %q`, store))
		cmd := newAppCommand(func(string) string { return "" }, nil)
		cmd.SetArgs([]string{"backfill", "items", "--config", cfg})
		cmd.SetOut(&strings.Builder{})
		if err := cmd.ExecuteContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := len(rawIDs(t, store, "api")); n != 10 {
			t.Errorf("%d raw events in the config file's store, want 10", n)
		}
	})

	t.Run("ApplicationSource", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.app = &App{Backfills: []*backfill.Backfill{{Name: "gen", EventSource: "gen", Source: backfill.SourceFunc(
			func(_ context.Context, cursor string) (*backfill.Page, error) {
				n, _ := strconv.Atoi(cursor)
				return &backfill.Page{Items: []backfill.Item{{ID: strconv.Itoa(n), Type: "tick", Data: []byte(`{}`)}}, Next: strconv.Itoa(n + 1), Last: n == 4}, nil
			})}}}
		if out := b.run(t, "backfill", "gen"); !strings.HasPrefix(out, "backfill gen completed: stored 5, duplicates 0 in 5 pages") {
			t.Errorf("printed %q", out)
		}
	})

	t.Run("SourceFailure", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no such resource", http.StatusNotFound)
		}))
		t.Cleanup(srv.Close)
		a := &sourceAPI{srv: srv}
		res := b.execute(t.Context(), "", "backfill", "items", "--config", a.configFile(t, "api", ""))
		if res.err == nil || !strings.Contains(res.err.Error(), `backfill "items": fetch the page after cursor "": GET http://127.0.0.1:`) ||
			!strings.Contains(res.err.Error(), "/items: 404 Not Found: no such resource") {
			t.Fatalf("err = %v", res.err)
		}
		if !strings.HasPrefix(res.stdout, "backfill items stopped (run the same command to resume): stored 0") {
			t.Errorf("printed %q", res.stdout)
		}
	})
}

func TestBackfillCommandRejectsBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	valid := `{"url": "http://127.0.0.1:1/x", "next": "/next", "id": "/id", "type": "/type"}`
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"Unknown", []string{"other", "--config", write("two.json", `{"backfills": {"b": `+valid+`, "a": `+valid+`}}`)},
			[]string{`no backfill "other" (configured: a, b)`}},
		{"NoConfig", []string{"items"}, []string{`no backfill "items": configure it under "backfills" in a config file and pass --config FILE`}},
		{"NoBackfills", []string{"items", "--config", write("none.json", `{}`)}, []string{`none.json has no "backfills"`}},
		{"Misspelt", []string{"items", "--config", write("typo.json", `{"backfils": {}}`)}, []string{`json: unknown field "backfils"`}},
		{"MissingFile", []string{"items", "--config", filepath.Join(dir, "missing.json")}, []string{"--config: open", "no such file"}},
		{"Invalid", []string{"items", "--rate", "-2", "--config", write("bad.json", `{"backfills": {"items": {"url": "file:///etc/passwd", "items": "data", "type": "/t", "type_value": "t"}}}`)},
			[]string{"--rate must not be negative", `backfill "items": url "file:///etc/passwd": want an http:// or https:// URL`,
				`backfill "items": next is required`, `backfill "items": id is required`, "type and type_value are exclusive", `items "data": want a JSON pointer`}},
		{"BadName", []string{"a/b"}, []string{`backfill "a/b": the name must be printable, without spaces, '/'`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			res := b.execute(t.Context(), "", append([]string{"backfill"}, tt.args...)...)
			if res.err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.want {
				if !strings.Contains(res.err.Error(), want) {
					t.Errorf("error %q\nlacks %q", res.err, want)
				}
			}
			if _, err := os.Stat(b.store); !os.IsNotExist(err) {
				t.Errorf("the store was opened: %v", err)
			}
		})
	}
}

// TestBackfillSurvivesSIGKILL runs "rawevents backfill" in a child
// process on a few thousand items, slowed by its rate limit, kills it with
// SIGKILL mid-way, and runs it again: the second run resumes at the saved
// cursor, and the raw log ends with every item exactly once.
func TestBackfillSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	const items, pageSize = 3000, 50
	for _, tt := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"SQLite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "events.db") }},
		{"Postgres", func(t *testing.T) string {
			pool := pgtest.Pool(t)
			u, err := url.Parse(pgtest.URL())
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("schema", pgtest.Schema(t, pool))
			u.RawQuery = q.Encode()
			return u.String()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := tt.store(t)
			a := newSourceAPI(t, items, pageSize)
			killAt := make(chan struct{})
			var once sync.Once
			a.onPage = func(cursor string) {
				if cursor == strconv.Itoa(20*pageSize) {
					once.Do(func() { close(killAt) })
				}
			}
			cfg := a.configFile(t, "api", "")
			child := func() (*exec.Cmd, *strings.Builder) {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join([]string{"backfill", "items", "--config", cfg, "--store", store, "--rate", "40"}, "\n"))
				out := &strings.Builder{}
				cmd.Stdout, cmd.Stderr = out, out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd, out
			}

			first, firstOut := child()
			select {
			case <-killAt:
			case <-time.After(2 * time.Minute):
				first.Process.Kill() //nolint:errcheck
				t.Fatalf("the child did not reach page 21; output:\n%s", firstOut)
			}
			// Pages are 25 ms apart: the kill lands anywhere in a page's
			// fetch, store and save.
			time.Sleep(rand.N(25 * time.Millisecond))
			if err := first.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			first.Wait() //nolint:errcheck // killed
			killedAfter := len(a.asked())

			second, secondOut := child()
			if err := second.Wait(); err != nil {
				t.Fatalf("second run: %v; output:\n%s", err, secondOut)
			}
			asked := a.asked()
			resumedAt, _ := strconv.Atoi(asked[killedAfter])
			if resumedAt < 20*pageSize {
				t.Errorf("the second run started at cursor %q, want the saved cursor, 1000 or later (asked %v)", asked[killedAfter], asked)
			}
			if !strings.Contains(secondOut.String(), "backfill items: resuming after ") || !strings.Contains(secondOut.String(), "backfill items completed: ") {
				t.Errorf("second run printed:\n%s", secondOut)
			}
			ids := rawIDs(t, store, "api")
			if len(ids) != items {
				t.Fatalf("%d raw events, want %d", len(ids), items)
			}
			for i, id := range ids {
				if want := fmt.Sprintf("item-%05d", i); id != want {
					t.Fatalf("raw event %d is %s, want %s", i, id, want)
				}
			}
			st := statusOf(t, store, "items")
			// A page stored just before the kill, whose cursor was not
			// saved, is counted as duplicates by the second run.
			if st.State != backfill.StateCompleted || st.Stored < items-pageSize || st.Stored > items || st.Items != st.Stored+st.Duplicates || st.Runs != 2 {
				t.Errorf("progress %+v", st)
			}
			t.Logf("killed after %d requests; resumed at cursor %d; %d requests in all; %d items stored, %d refetched as duplicates",
				killedAfter, resumedAt, len(asked), st.Stored, st.Duplicates)
		})
	}
}

func statusOf(t *testing.T, dsn, name string) *backfill.Progress {
	t.Helper()
	store, _, err := openStore(t.Context(), dsn, false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p, err := backfill.Status(t.Context(), store, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeValidatesBackfills: "rawevents serve" reads the same file, and
// refuses one whose backfills are wrong rather than keep the mistake for
// the first "rawevents backfill".
func TestServeValidatesBackfills(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rawevents.json")
	if err := os.WriteFile(path, []byte(`{"backfills": {"b": {"url": "http://x/"}, "a": {"url": "http://x/", "next": "/n", "id": "/id", "type_value": "t"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := ServeOpts{ConfigFile: path, ShutdownTimeout: time.Second}
	err := opts.Validate()
	if err == nil || !strings.Contains(err.Error(), `backfill "b": next is required`) || strings.Contains(err.Error(), `backfill "a"`) {
		t.Fatalf("err = %v, want b's problems only", err)
	}
}

// TestServeRunsBackfillTasks: "rawevents serve" starts a backfill of its
// config file as a River task on POST /v1/backfills/{name}/run (admin
// scope), its worker role works it to the end, and restart=true pulls
// everything again (stored once: the second pass finds only duplicates);
// an unknown backfill is a 404 problem detail, a token without the admin
// scope a 403, and neither enqueues anything.
func TestServeRunsBackfillTasks(t *testing.T) {
	t.Parallel()
	api := newSourceAPI(t, 250, 100)
	const admin, reader = "admin-secret-0123456789", "read-secret-0123456789"
	tokens := `"tokens": [{"name": "ops", "secret": "` + admin + `", "scopes": ["admin"]}, {"name": "dash", "secret": "` + reader + `", "scopes": ["read"]}]`
	base, out := serveWith(t, &ServeOpts{GlobalOpts: GlobalOpts{Store: filepath.Join(t.TempDir(), "events.db")}, ConfigFile: api.configFile(t, "https://shop.example", tokens)})
	if !strings.Contains(out.String(), "backfill tasks") {
		t.Errorf("output does not say the worker runs backfill tasks:\n%s", out)
	}
	send := func(method, path, token string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%s %s: %d, %v", method, path, resp.StatusCode, err)
		}
		if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d with %s", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return resp.StatusCode, body
	}
	call := func(method, path, token string, want int) map[string]any {
		t.Helper()
		status, body := send(method, path, token)
		if status != want {
			t.Fatalf("%s %s: %d %v, want %d", method, path, status, body, want)
		}
		return body
	}
	until := func(what string, ok func(p map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			// 404 until the task has saved its first progress.
			status, p := send(http.MethodGet, "/v1/backfills/items", reader)
			if status == http.StatusOK && ok(p) {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last %d %v", what, status, p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Refused: nothing is enqueued, so nothing has run.
	call(http.MethodPost, "/v1/backfills/items/run", reader, http.StatusForbidden)
	if body := call(http.MethodPost, "/v1/backfills/nope/run", admin, http.StatusNotFound); !strings.Contains(fmt.Sprint(body["detail"]), "no backfill") {
		t.Errorf("unknown backfill: %v", body)
	}
	call(http.MethodGet, "/v1/backfills/items", reader, http.StatusNotFound)

	if body := call(http.MethodPost, "/v1/backfills/items/run", admin, http.StatusAccepted); body["task"].(float64) <= 0 || body["existing"] != false {
		t.Fatalf("run: %v", body)
	}
	p := until("the task completes", func(p map[string]any) bool { return p["state"] == backfill.StateCompleted })
	if p["stored"] != 250.0 || p["duplicates"] != 0.0 || p["runs"] != 1.0 {
		t.Errorf("after the task: %v", p)
	}
	call(http.MethodPost, "/v1/backfills/items/run?restart=true", admin, http.StatusAccepted)
	p = until("the restarted task completes", func(p map[string]any) bool { return p["runs"] == 2.0 && p["state"] == backfill.StateCompleted })
	if p["stored"] != 0.0 || p["duplicates"] != 250.0 {
		t.Errorf("after the restart: %v", p)
	}
}
