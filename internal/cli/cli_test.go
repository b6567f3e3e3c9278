package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/pgtest"
)

type testBundle struct {
	store string // the SQLite file of this test
	app   *App   // the application built into the binary, if any
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{store: filepath.Join(t.TempDir(), "events.db")}
}

// result is what one run of the command line produced.
type result struct {
	stdout, stderr string
	err            error
}

// execute runs the root command with args, --store pointing at the test's
// file, stdin as standard input.
func (b *testBundle) execute(ctx context.Context, stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	cmd := newAppCommand(func(string) string { return "" }, b.app)
	cmd.SetArgs(append(args, "--store", b.store))
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.ExecuteContext(ctx)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// run is execute without stdin, failing the test if the command fails.
func (b *testBundle) run(t *testing.T, args ...string) string {
	t.Helper()
	res := b.execute(t.Context(), "", args...)
	if res.err != nil {
		t.Fatalf("%v: %v", args, res.err)
	}
	if res.stderr != "" {
		t.Errorf("%v: stderr: %q", args, res.stderr)
	}
	return res.stdout
}

// events reads the whole global log of the test's store.
func (b *testBundle) events(t *testing.T) []event.Event {
	t.Helper()
	store, _, err := openStore(t.Context(), b.store, true)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	events, err := store.ReadAll(t.Context(), &rawevents.ReadAllOpts{Limit: rawevents.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// parseJSONLines decodes one event.Event per line.
func parseJSONLines(t *testing.T, out string) []event.Event {
	t.Helper()
	var events []event.Event
	for line := range strings.Lines(out) {
		var e event.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestAppendAndRead(t *testing.T) {
	t.Parallel()

	t.Run("Human", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		out := b.run(t, "append", "--stream", "order-1", "--type", "order.placed", "--data", `{"total": 12}`)
		if want := "appended order-1 v1 at position 1\n"; out != want {
			t.Errorf("append printed %q, want %q", out, want)
		}
		b.run(t, "append", "--stream", "order-1", "--type", "order.paid", "--expect", "1")

		got := lines(b.run(t, "read", "order-1"))
		if len(got) != 2 {
			t.Fatalf("read printed %q, want 2 lines", got)
		}
		fields := strings.Split(got[0], "  ")
		if len(fields) != 5 || fields[0] != "v1" || fields[1] != "#1" || fields[3] != "order.placed" || fields[4] != `{"total":12}` {
			t.Errorf("line 1 = %q, want v1  #1  <time>  order.placed  {\"total\":12}", got[0])
		}
		if _, err := time.Parse(time.RFC3339, fields[2]); err != nil {
			t.Errorf("line 1 time: %v", err)
		}
		if !strings.HasPrefix(got[1], "v2  #2  ") || !strings.HasSuffix(got[1], "  order.paid  null") {
			t.Errorf("line 2 = %q", got[1])
		}
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		out := b.run(t, "append", "--json", "--stream", "order-1", "--type", "order.placed", "--data", `{"total":12}`,
			"--correlation-id", "corr-1", "--causation-id", "cmd-1", "--actor", "alice", "--schema-version", "2")
		appended := parseJSONLines(t, out)
		if len(appended) != 1 {
			t.Fatalf("append --json printed %d events, want 1", len(appended))
		}
		b.run(t, "append", "--stream", "order-1", "--type", "order.paid")

		read := parseJSONLines(t, b.run(t, "read", "--json", "order-1"))
		if len(read) != 2 {
			t.Fatalf("read --json printed %d events, want 2", len(read))
		}
		e := read[0]
		if e.ID != appended[0].ID || e.StreamID != "order-1" || e.StreamVersion != 1 || e.Position != 1 ||
			e.Type != "order.placed" || e.SchemaVersion != 2 || string(e.Data) != `{"total":12}` {
			t.Errorf("event 1 = %+v", e)
		}
		want := event.Metadata{CorrelationID: "corr-1", CausationID: "cmd-1", Actor: "alice"}
		if e.Metadata.CorrelationID != want.CorrelationID || e.Metadata.CausationID != want.CausationID || e.Metadata.Actor != want.Actor {
			t.Errorf("metadata = %+v, want %+v", e.Metadata, want)
		}
		if read[1].StreamVersion != 2 || read[1].Type != "order.paid" {
			t.Errorf("event 2 = %+v", read[1])
		}
	})

	t.Run("DataFromFile", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		path := filepath.Join(t.TempDir(), "data.json")
		if err := os.WriteFile(path, []byte("{\n  \"total\": 12\n}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		b.run(t, "append", "--stream", "order-1", "--type", "order.placed", "--data", "@"+path)
		events := b.events(t)
		if len(events) != 1 || string(events[0].Data) != "{\n  \"total\": 12\n}\n" {
			t.Errorf("stored %+v, want the file's bytes as data", events)
		}
	})

	t.Run("DataFromStdin", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.execute(t.Context(), `{"total":12}`, "append", "--stream", "order-1", "--type", "order.placed", "--data", "-")
		if res.err != nil {
			t.Fatal(res.err)
		}
		events := b.events(t)
		if len(events) != 1 || string(events[0].Data) != `{"total":12}` {
			t.Errorf("stored %+v, want stdin as data", events)
		}
	})

	t.Run("LongDataIsTruncatedForHumansOnly", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		data := `{"note":"` + strings.Repeat("é", 300) + `"}`
		b.run(t, "append", "--stream", "s", "--type", "t", "--data", data)
		line := strings.TrimSuffix(b.run(t, "read", "s"), "\n")
		shown := line[strings.LastIndex(line, "  ")+2:]
		if !strings.HasSuffix(shown, "…") || len([]rune(shown)) != maxDataWidth {
			t.Errorf("human data = %q, want %d characters ending in …", shown, maxDataWidth)
		}
		if e := parseJSONLines(t, b.run(t, "read", "--json", "s")); string(e[0].Data) != data {
			t.Errorf("JSON data = %s, want it whole", e[0].Data)
		}
	})

	t.Run("EmptyStreamPrintsNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.run(t, "migrate")
		if out := b.run(t, "read", "nobody"); out != "" {
			t.Errorf("read printed %q", out)
		}
	})

	t.Run("MissingStoreIsAnError", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, args := range [][]string{{"read", "x"}, {"tail", "--follow=false"}} {
			if res := b.execute(t.Context(), "", args...); res.err == nil || !strings.Contains(res.err.Error(), "no store at") {
				t.Errorf("%v on a missing file: err = %v", args, res.err)
			}
		}
		if _, err := os.Stat(b.store); !os.IsNotExist(err) {
			t.Errorf("reading created %s", b.store)
		}
	})
}

func TestRead(t *testing.T) {
	t.Parallel()

	// setupStream appends n events to stream "s".
	setupStream := func(t *testing.T, n int) *testBundle {
		t.Helper()
		b := setup(t)
		store, _, err := openStore(t.Context(), b.store, true)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		proposed := make([]event.Proposed, n)
		for i := range proposed {
			proposed[i] = event.Proposed{Type: "tick"}
		}
		if _, err := store.Append(t.Context(), "s", event.NoStream, proposed...); err != nil {
			t.Fatal(err)
		}
		return b
	}
	versions := func(t *testing.T, out string) []int64 {
		t.Helper()
		var vs []int64
		for _, e := range parseJSONLines(t, out) {
			vs = append(vs, e.StreamVersion)
		}
		return vs
	}

	t.Run("PagesThroughLongStreams", func(t *testing.T) {
		t.Parallel()
		n := rawevents.DefaultPageSize*2 + 1
		b := setupStream(t, n)
		for _, args := range [][]string{{"read", "--json", "s"}, {"read", "--json", "--backwards", "s"}} {
			vs := versions(t, b.run(t, args...))
			if len(vs) != n {
				t.Fatalf("%v printed %d events, want %d", args, len(vs), n)
			}
			first, last := vs[0], vs[len(vs)-1]
			if args[2] == "--backwards" {
				first, last = last, first
			}
			if first != 1 || last != int64(n) {
				t.Errorf("%v printed versions %d..%d", args, vs[0], vs[len(vs)-1])
			}
		}
	})

	t.Run("FromBackwardsLimit", func(t *testing.T) {
		t.Parallel()
		b := setupStream(t, 5)
		for _, tt := range []struct {
			args []string
			want []int64
		}{
			{[]string{"--from", "3"}, []int64{3, 4, 5}},
			{[]string{"--limit", "2"}, []int64{1, 2}},
			{[]string{"--from", "2", "--limit", "2"}, []int64{2, 3}},
			{[]string{"--backwards"}, []int64{5, 4, 3, 2, 1}},
			{[]string{"--backwards", "--from", "2"}, []int64{2, 1}},
			{[]string{"--backwards", "--limit", "2"}, []int64{5, 4}},
		} {
			got := versions(t, b.run(t, append([]string{"read", "--json", "s"}, tt.args...)...))
			if !equal(got, tt.want) {
				t.Errorf("read %v: versions %v, want %v", tt.args, got, tt.want)
			}
		}
	})
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAppendExpectNoneTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	args := []string{"append", "--stream", "order-1", "--type", "order.placed", "--expect", "none"}
	b.run(t, args...)

	res := b.execute(t.Context(), "", args...)
	if res.err == nil {
		t.Fatal("second append with --expect none succeeded")
	}
	if want := `stream "order-1": wrong expected version: expected none, stream is at 1`; res.err.Error() != want {
		t.Errorf("error = %q, want %q", res.err, want)
	}
	if res.stdout != "" {
		t.Errorf("stdout = %q", res.stdout)
	}
	if n := len(b.events(t)); n != 1 {
		t.Errorf("store holds %d events, want 1", n)
	}
}

func TestAppendIdempotentWithID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	args := []string{"append", "--stream", "order-1", "--type", "order.placed", "--data", `{"total":12}`,
		"--expect", "none", "--id", "0196b4a2-7c1e-7000-8000-000000000001"}
	if out := b.run(t, args...); out != "appended order-1 v1 at position 1\n" {
		t.Errorf("first append printed %q", out)
	}
	if out := b.run(t, args...); out != "appended order-1 v1 at position 1 (duplicate)\n" {
		t.Errorf("retry printed %q", out)
	}
	if n := len(b.events(t)); n != 1 {
		t.Errorf("store holds %d events, want 1", n)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"InvalidJSON", []string{"append", "--stream", "s", "--type", "t", "--data", "{total: 12}"}, "--data is not valid JSON"},
		{"MissingType", []string{"append", "--stream", "s"}, "--type is required"},
		{"EmptyStream", []string{"append", "--stream", "", "--type", "t"}, "--stream is required"},
		{"BadExpect", []string{"append", "--stream", "s", "--type", "t", "--expect", "maybe"}, `--expect: expected version "maybe"`},
		{"MissingFile", []string{"append", "--stream", "s", "--type", "t", "--data", "@does-not-exist.json"}, "--data: open does-not-exist.json"},
		{"BadID", []string{"append", "--stream", "s", "--type", "t", "--id", "42"}, "--id: invalid UUID"},
		{"NegativeLimit", []string{"read", "s", "--limit", "-1"}, "--limit must not be negative"},
		{"NegativeTailFrom", []string{"tail", "--from", "-1"}, "--from must not be negative"},
		{"UnknownFlag", []string{"append", "--nope"}, "append: unknown flag: --nope (see rawevents append --help)"},
		{"NotANumber", []string{"read", "s", "--limit", "many"}, `invalid argument "many" for "--limit"`},
		{"MissingStreamArgument", []string{"read"}, "accepts 1 arg(s), received 0"},
		{"UnknownCommand", []string{"apend"}, `unknown command "apend" (did you mean "append"?)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			res := b.execute(t.Context(), "", tt.args...)
			if res.err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(res.err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", res.err, tt.wantErr)
			}
			if res.stdout != "" || res.stderr != "" {
				t.Errorf("printed stdout %q, stderr %q; the caller prints the error", res.stdout, res.stderr)
			}
			if _, err := os.Stat(b.store); !os.IsNotExist(err) {
				t.Errorf("the store was opened (stat: %v); flags must be checked first", err)
			}
		})
	}

	t.Run("EveryProblemAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.execute(t.Context(), "", "append", "--expect", "maybe")
		for _, want := range []string{"--stream is required", "--type is required", "--expect"} {
			if res.err == nil || !strings.Contains(res.err.Error(), want) {
				t.Errorf("error = %v, want it to mention %q", res.err, want)
			}
		}
	})
}

func TestTail(t *testing.T) {
	t.Parallel()

	t.Run("NoFollowPrintsEverything", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.run(t, "append", "--stream", "a", "--type", "t1")
		b.run(t, "append", "--stream", "b", "--type", "t2")
		b.run(t, "append", "--stream", "a", "--type", "t3")

		got := lines(b.run(t, "tail", "--follow=false"))
		if len(got) != 3 || !strings.HasPrefix(got[0], "a  v1  #1  ") || !strings.HasPrefix(got[1], "b  v1  #2  ") || !strings.HasPrefix(got[2], "a  v2  #3  ") {
			t.Errorf("tail printed %q", got)
		}
		events := parseJSONLines(t, b.run(t, "tail", "--follow=false", "--json", "--from", "1"))
		if len(events) != 2 || events[0].Position != 2 || events[1].Position != 3 {
			t.Errorf("tail --from 1 printed %+v", events)
		}
	})

	t.Run("FollowPrintsNewEvents", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.run(t, "append", "--stream", "a", "--type", "before")

		ctx, cancel := context.WithCancel(t.Context())
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			cmd := newAppCommand(func(string) string { return "" }, b.app)
			cmd.SetArgs([]string{"tail", "--store", b.store})
			cmd.SetOut(out)
			cmd.SetErr(out)
			done <- cmd.ExecuteContext(ctx)
		}()

		waitFor(t, out, "a  v1  #1  ")
		b.run(t, "append", "--stream", "b", "--type", "after")
		waitFor(t, out, "b  v1  #2  ")

		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("tail stopped with %v, want nil after cancel", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("tail did not stop after cancel")
		}
	})
}

// waitFor polls out until it contains want, failing after a deadline.
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q never contained %q", out.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	files, err := os.ReadDir("../../driver/sqlite/migrations")
	if err != nil {
		t.Fatal(err)
	}
	latest := len(files)
	var applied []string
	for v := 1; v <= latest; v++ {
		applied = append(applied, strconv.Itoa(v))
	}
	if out := b.run(t, "migrate"); out != fmt.Sprintf("schema at version %d (applied: %s)\n", latest, strings.Join(applied, ", ")) {
		t.Errorf("first migrate printed %q", out)
	}
	if out := b.run(t, "migrate"); out != fmt.Sprintf("schema at version %d (up to date)\n", latest) {
		t.Errorf("second migrate printed %q", out)
	}
	var res struct {
		Applied []int
		Version int
	}
	if err := json.Unmarshal([]byte(b.run(t, "migrate", "--json")), &res); err != nil || res.Version != latest || len(res.Applied) != 0 {
		t.Errorf("migrate --json: %+v, %v", res, err)
	}
}

func TestStoreDefault(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env, want string
	}{
		{"", "rawevents.db"},
		{"/var/lib/app/events.db", "/var/lib/app/events.db"},
	} {
		cmd := newRootCommand(func(name string) string {
			if name == "RAWEVENTS_STORE" {
				return tt.env
			}
			return ""
		})
		if got := cmd.PersistentFlags().Lookup("store").DefValue; got != tt.want {
			t.Errorf("RAWEVENTS_STORE=%q: default --store %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	schema := pgtest.Schema(t, pool)
	u, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	b := &testBundle{store: u.String()}

	if out := b.run(t, "append", "--stream", "order-1", "--type", "order.placed", "--data", `{"total": 12}`, "--expect", "none"); out != "appended order-1 v1 at position 1\n" {
		t.Fatalf("append: %q", out)
	}
	got := parseJSONLines(t, b.run(t, "read", "--json", "order-1"))
	if len(got) != 1 || string(got[0].Data) != `{"total":12}` && string(got[0].Data) != `{"total": 12}` {
		t.Fatalf("read back %+v", got)
	}
	if res := b.execute(t.Context(), "", "append", "--stream", "order-1", "--type", "x", "--expect", "none"); res.err == nil ||
		!strings.Contains(res.err.Error(), "wrong expected version") {
		t.Fatalf("second append with --expect none: %v", res.err)
	}
	if n := len(b.events(t)); n != 1 {
		t.Fatalf("%d events in the PostgreSQL store, want 1", n)
	}
}
