package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/pgtest"
	"github.com/rawevents/rawevents/projection"
)

// notesApp turns raw "note.posted" events into domain "note.saved" events
// (a processor) and projects those into a searchable table.
func notesApp(version int) *App {
	return &App{
		SQLite: notesSetup[*sql.Tx], Postgres: notesSetup[pgx.Tx],
		Projections: []*projection.Projection{{
			Name: "notes", Version: version, Types: []string{"note.saved"},
			Tables: []projection.Table{{
				Name: "note",
				Columns: []projection.Column{
					{Name: "id", Type: projection.Text}, {Name: "text", Type: projection.Text},
					{Name: "author", Type: projection.Text, Index: true}, {Name: "length", Type: projection.Integer},
				},
				Key: []string{"id"}, Search: []string{"text"},
			}},
			Handle: func(ctx context.Context, tx *projection.Tx, e event.Event) error {
				var n struct{ ID, Text, Author string }
				if err := json.Unmarshal(e.Data, &n); err != nil {
					return err
				}
				length := len(n.Text)
				if version > 1 {
					length = len([]rune(n.Text))
				}
				return tx.Upsert(ctx, "note", projection.Row{"id": n.ID, "text": n.Text, "author": n.Author, "length": length})
			},
		}},
	}
}

func notesSetup[TTx any](_ context.Context, store *rawevents.Store[TTx]) ([]*rawevents.Subscription[TTx], error) {
	return []*rawevents.Subscription[TTx]{{
		Name:   "notes-processor",
		Filter: func(e event.Event) bool { return e.Type == "note.posted" },
		Key:    func(e event.Event) string { return e.StreamID },
		// Four partitions, so that most of them are idle for any one note:
		// waiting for a raw event's position must not wait for their
		// occasional checkpoint.
		Partitions: 4,
		Handle: func(ctx context.Context, tx TTx, e event.Event) error {
			time.Sleep(2 * time.Millisecond) // a processor that takes its time
			var n struct{ ID, Text, Author string }
			if err := domain.RawData(e, &n); err != nil {
				return err
			}
			data, err := json.Marshal(n)
			if err != nil {
				return err
			}
			_, err = store.AppendTx(ctx, tx, "note-"+n.ID, event.Any, event.Proposed{Type: "note.saved", Data: data})
			return err
		},
		Lease: time.Second,
	}}, nil
}

// serveNotes runs "serve" with the notes app on store and returns its URL.
func serveNotes(t *testing.T, store string) string {
	t.Helper()
	base, out := serveWith(t, &ServeOpts{GlobalOpts: GlobalOpts{Store: store}, App: notesApp(1)})
	if !strings.Contains(out.String(), "projector running notes") {
		t.Fatalf("output:\n%s", out)
	}
	return base
}

// serveWith runs "serve" with opts on a free loopback port until the test
// ends, and returns its URL and its output.
func serveWith(t *testing.T, opts *ServeOpts) (string, *syncWriter) {
	t.Helper()
	ready := make(chan string, 1)
	opts.Addr, opts.Ready = "127.0.0.1:0", ready
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncWriter{}
	done := make(chan error, 1)
	go func() { done <- opts.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, out)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr, out
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, out)
	}
	return "", out
}

func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("GET %s: %d with %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, out
}

func postNote(t *testing.T, base, id, text, author string) int64 {
	t.Helper()
	body := fmt.Sprintf(`{"specversion":"1.0","source":"notes","id":%q,"type":"note.posted","data":{"id":%q,"text":%q,"author":%q}}`, id, id, text, author)
	resp, err := http.Post(base+"/v1/events", "application/cloudevents+json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Position int64 }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Position == 0 {
		t.Fatalf("ingest %s: %d, %v, %+v", id, resp.StatusCode, err, out)
	}
	return out.Position
}

// TestQueryAPIReadYourWrites: a client that ingested a raw event and asks
// with wait_for for the position it got back always sees the read-model
// row the raw event leads to, through the processor and the projection;
// without wait_for, the answer's position says whether it may.
func TestQueryAPIReadYourWrites(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"SQLite", "PostgreSQL"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := filepath.Join(t.TempDir(), "events.db")
			if backend == "PostgreSQL" {
				store = pgStoreURL(t)
			}
			base := serveNotes(t, store)
			for i := range 25 {
				id := fmt.Sprintf("n%d", i)
				pos := postNote(t, base, id, fmt.Sprintf("running note number %d", i), "ann")
				// Without wait_for, the answer's position tells whether the
				// write shows: at or past pos, it must.
				_, page := getJSON(t, base+"/v1/read/notes/note?id="+id)
				if int64(page["position"].(float64)) >= pos && len(page["rows"].([]any)) != 1 {
					t.Fatalf("position %v >= %d but no row", page["position"], pos)
				}
				status, row := getJSON(t, fmt.Sprintf("%s/v1/read/notes/note/%s?wait_for=%d", base, id, pos))
				if status != http.StatusOK || int64(row["position"].(float64)) < pos {
					t.Fatalf("with wait_for=%d: %d %v", pos, status, row)
				}
				if r := row["row"].(map[string]any); r["id"] != id || r["author"] != "ann" {
					t.Fatalf("row %v", r)
				}
			}
			// Lists: filters, search (stemmed), sort, paging.
			pos := postNote(t, base, "x", "Ünïcode café walked", "bob")
			status, page := getJSON(t, fmt.Sprintf("%s/v1/read/notes/note?wait_for=%d&author=bob", base, pos))
			if rows := page["rows"].([]any); status != http.StatusOK || len(rows) != 1 {
				t.Fatalf("author=bob: %d %v", status, page)
			}
			status, page = getJSON(t, base+"/v1/read/notes/note?q=runs&limit=10&sort=-id")
			if rows := page["rows"].([]any); status != http.StatusOK || len(rows) != 10 || page["next"] == nil {
				t.Fatalf("q=runs: %d %v", status, page)
			}
			status, page = getJSON(t, base+"/v1/read/notes/note?q="+url.QueryEscape(`"note number 7"`))
			if rows := page["rows"].([]any); status != http.StatusOK || len(rows) != 1 {
				t.Fatalf("phrase: %d %v", status, page)
			}
			status, page = getJSON(t, base+"/v1/read/notes/note?q="+url.QueryEscape("café"))
			if rows := page["rows"].([]any); status != http.StatusOK || len(rows) != 1 {
				t.Fatalf("unicode: %d %v", status, page)
			}
			// Bad input: a problem detail, never a 500.
			for query, want := range map[string]int{
				"?wait_for=100000&timeout=100ms": http.StatusGatewayTimeout,
				"?wait_for=1&timeout=forever":    http.StatusBadRequest,
				"?wait_for=1&timeout=1h":         http.StatusBadRequest,
				"?text=x":                        http.StatusBadRequest,
				"?nope=x":                        http.StatusBadRequest,
				"?sort=text":                     http.StatusBadRequest,
				"?cursor=zzz":                    http.StatusBadRequest,
				"?limit=0":                       http.StatusUnprocessableEntity,
				"?q=" + url.QueryEscape(`'); DROP TABLE x; --`):   http.StatusOK,
				"?q=" + url.QueryEscape(`NEAR(" OR AND * ^:`):     http.StatusOK,
				"?q=" + url.QueryEscape(`***`):                    http.StatusBadRequest,
				"?author=bob&author=ann":                          http.StatusUnprocessableEntity,
				"?q=" + url.QueryEscape(strings.Repeat("a", 501)): http.StatusUnprocessableEntity,
			} {
				if status, body := getJSON(t, base+"/v1/read/notes/note"+query); status != want {
					t.Errorf("%s: %d %v, want %d", query, status, body, want)
				}
			}
			if status, _ := getJSON(t, base+"/v1/read/notes/note/nope"); status != http.StatusNotFound {
				t.Errorf("unknown key: %d", status)
			}
			if status, _ := getJSON(t, base+"/v1/projections/nope"); status != http.StatusNotFound {
				t.Errorf("unknown projection: %d", status)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				status, list := getJSON(t, base+"/v1/projections")
				st := list["projections"].([]any)[0].(map[string]any)
				if status == http.StatusOK && st["state"] == "live" && st["lag"] == 0.0 && st["name"] == "notes" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("projections: %v", list)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func pgStoreURL(t *testing.T) string {
	t.Helper()
	pool := pgtest.Pool(t)
	u, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("schema", pgtest.Schema(t, pool))
	u.RawQuery = q.Encode()
	return u.String()
}

// TestProjectionsCommands: list, rebuild --preview, rebuild (swap),
// drop-retired, against a running server.
func TestProjectionsCommands(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "events.db")
	base := serveNotes(t, store)
	var pos int64
	for i := range 5 {
		pos = postNote(t, base, fmt.Sprintf("n%d", i), fmt.Sprintf("héllo %d", i), "ann")
	}
	if status, _ := getJSON(t, fmt.Sprintf("%s/v1/read/notes/note/n4?wait_for=%d", base, pos)); status != http.StatusOK {
		t.Fatal(status)
	}
	cli := &testBundle{store: store}
	cli.app = notesApp(2) // counts characters, not bytes: a new version
	if out := cli.run(t, "projections"); !strings.Contains(out, "notes") || !strings.Contains(out, "needs_rebuild") {
		t.Fatalf("projections:\n%s", out)
	}
	out := cli.run(t, "projections", "rebuild", "notes", "--preview")
	if !strings.Contains(out, "note   0      0        5        0") || !strings.Contains(out, "preview only") {
		t.Fatalf("preview:\n%s", out)
	}
	if out := cli.run(t, "projections", "--json"); strings.Contains(out, `"rebuild":{`) {
		t.Fatalf("the preview left a rebuild behind:\n%s", out)
	}
	if out := cli.run(t, "projections", "rebuild", "notes"); !strings.Contains(out, "swapped in") {
		t.Fatalf("rebuild:\n%s", out)
	}
	status, row := getJSON(t, base+"/v1/read/notes/note/n1")
	if r, _ := row["row"].(map[string]any); status != http.StatusOK || r["length"] != 7.0 {
		t.Fatalf("after the swap n1 = %d %v (want 7 characters)", status, row)
	}
	if out := cli.run(t, "projections", "drop-retired", "notes"); !strings.Contains(out, "dropped 1") {
		t.Fatalf("drop-retired:\n%s", out)
	}
	if res := cli.execute(t.Context(), "", "projections", "rebuild", "nope"); res.err == nil || !strings.Contains(res.err.Error(), "not found") {
		t.Fatalf("rebuild of an unknown projection: %v", res.err)
	}
}

// TestSearchWhileIndexing: a read model built from a log long enough to
// have its indexes built once it has caught up answers a search with 503
// and a problem detail until then; a list without a search is served.
func TestSearchWhileIndexing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	store, _, err := openStore(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		id := fmt.Sprintf("n%d", i)
		_, err := store.(*rawevents.Store[*sql.Tx]).Append(ctx, "note-"+id, event.Any, event.Proposed{Type: "note.saved",
			Data: []byte(fmt.Sprintf(`{"ID":%q,"Text":"running note %d","Author":"ann"}`, id, i))})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	// The API alone: nothing projects, so the indexes stay unbuilt.
	app := notesApp(1)
	app.BulkIndexFrom = 5
	base, _ := serveWith(t, &ServeOpts{GlobalOpts: GlobalOpts{Store: path}, Roles: []string{RoleAPI}, App: app})
	status, body := getJSON(t, base+"/v1/read/notes/note?q=running")
	if status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body["detail"]), "catching up") {
		t.Errorf("search: %d %v, want 503 with a detail", status, body)
	}
	if status, body := getJSON(t, base+"/v1/read/notes/note?author=ann"); status != http.StatusOK || body["position"] == nil {
		t.Errorf("list: %d %v", status, body)
	}
	if status, list := getJSON(t, base+"/v1/projections"); status != http.StatusOK ||
		list["projections"].([]any)[0].(map[string]any)["indexed"] != false {
		t.Errorf("projections: %d %v", status, list)
	}
}

// TestParkedOfProjectionOverHTTP: the subscription endpoints of parked
// events find a projection's subscription in the read-model store (a
// second SQLite file): list, skip with an actor, list the skipped one.
func TestParkedOfProjectionOverHTTP(t *testing.T) {
	t.Parallel()
	app := notesApp(1)
	pr := app.Projections[0]
	handle := pr.Handle
	pr.MaxAttempts, pr.Backoff = 2, func(int) time.Duration { return time.Millisecond }
	pr.Handle = func(ctx context.Context, tx *projection.Tx, e event.Event) error {
		if strings.Contains(string(e.Data), "poison") {
			return errors.New("cannot read a poisoned note")
		}
		return handle(ctx, tx, e)
	}
	base, _ := serveWith(t, &ServeOpts{GlobalOpts: GlobalOpts{Store: filepath.Join(t.TempDir(), "events.db")}, App: app})
	postNote(t, base, "n1", "fine", "ann")
	postNote(t, base, "n2", "poison", "ann")
	pos := postNote(t, base, "n3", "fine too", "ann")
	if status, _ := getJSON(t, fmt.Sprintf("%s/v1/read/notes/note/n3?wait_for=%d", base, pos)); status != http.StatusOK {
		t.Fatalf("n3: %d", status)
	}
	const parked = "/v1/subscriptions/projection:notes:g1/parked"
	status, page := getJSON(t, base+parked)
	list, _ := page["parked"].([]any)
	if status != http.StatusOK || len(list) != 1 || !strings.Contains(fmt.Sprint(list[0].(map[string]any)["error"]), "poisoned") {
		t.Fatalf("parked: %d %v", status, page)
	}
	at := int64(list[0].(map[string]any)["position"].(float64))
	resp, err := http.Post(fmt.Sprintf("%s%s/%d/skip", base, parked, at), "application/json", strings.NewReader(`{"actor":"ana","reason":"bad data"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("skip: %d", resp.StatusCode)
	}
	if status, page := getJSON(t, base+parked+"?state=skipped"); status != http.StatusOK || len(page["parked"].([]any)) != 1 {
		t.Errorf("skipped: %d %v", status, page)
	}
	if status, _ := getJSON(t, base+"/v1/subscriptions/projection:nope:g1/parked"); status != http.StatusNotFound {
		t.Errorf("unknown subscription: %d", status)
	}
}
