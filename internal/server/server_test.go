package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/server"
	"github.com/rawevents/rawevents/rawtest"
)

// store is what the tests need of a store on either backend.
type store interface {
	server.Store
	ingest.Store
}

var (
	_ store = (*rawevents.Store[*sql.Tx])(nil)
	_ store = (*rawevents.Store[pgx.Tx])(nil)
)

// backends lists the stores every server test runs against.
var backends = []struct {
	name string
	open func(t testing.TB) store
}{
	{"SQLite", func(t testing.TB) store { return rawtest.SQLite(t) }},
	{"PostgreSQL", func(t testing.TB) store { return rawtest.Postgres(t) }},
}

// testBundle is a running server on a fresh store.
type testBundle struct {
	store store
	url   string
}

// setup starts a server on a fresh store of the named backend. config
// may set Tokens, Sources and limits; Store and Ingester are filled in.
func setup(t testing.TB, open func(testing.TB) store, config server.Config) *testBundle {
	t.Helper()
	s := open(t)
	in := ingest.New(s, &ingest.Config{Committers: 2})
	t.Cleanup(in.Close)
	config.Store, config.Ingester = s, in
	srv, err := server.New(config)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &testBundle{store: s, url: ts.URL}
}

// forEachBackend runs fn as a parallel subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, open func(testing.TB) store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.open)
		})
	}
}

// post sends body with the given headers and returns the status and the
// decoded JSON answer.
func (b *testBundle) post(t *testing.T, path string, header http.Header, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("answer %q: %v", raw, err)
		}
	}
	return resp.StatusCode, out
}

// log reads the whole global log.
func (b *testBundle) log(t *testing.T) []event.Event {
	t.Helper()
	events, err := b.store.ReadAll(context.Background(), &rawevents.ReadAllOpts{Limit: rawevents.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}
