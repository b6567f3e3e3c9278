package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/server"
)

// ingestBundle is a rawevents server running in the test, on its own
// SQLite store.
type ingestBundle struct {
	*testBundle
	store Store
	url   string
	env   map[string]string // the command's environment
}

func setupIngest(t *testing.T, config *server.Config) *ingestBundle {
	t.Helper()
	b := setup(t)
	store, _, err := openStore(context.Background(), b.store, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	in := ingest.New(store, nil)
	t.Cleanup(in.Close)
	cfg := server.Config{}
	if config != nil {
		cfg = *config
	}
	cfg.Store, cfg.Ingester, cfg.Logger = store, in, slog.New(slog.DiscardHandler)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &ingestBundle{testBundle: b, store: store, url: ts.URL, env: map[string]string{}}
}

// ingest runs "rawevents ingest" against the bundle's server (unless args
// name another), with stdin as standard input.
func (b *ingestBundle) ingest(ctx context.Context, stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(func(name string) string { return b.env[name] })
	cmd.SetArgs(append([]string{"ingest", "--server", b.url}, args...))
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.ExecuteContext(ctx)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// log reads the server's whole log.
func (b *ingestBundle) log(t *testing.T) []event.Event {
	t.Helper()
	events, err := b.store.ReadAll(t.Context(), &rawevents.ReadAllOpts{Limit: rawevents.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// cloudEvent is line i of a test input: a CloudEvent whose data keeps
// spaces that re-encoding would lose.
func cloudEvent(i int) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":"evt-%d","source":"https://example.com/orders","type":"com.example.order.placed","data":{"n": %d, "total": 1.50}}`, i, i)
}

// cloudEvents returns lines 1..n.
func cloudEvents(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = cloudEvent(i + 1)
	}
	return lines
}

// writeLines writes lines as an NDJSON file and returns its path.
func writeLines(t *testing.T, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseSummary decodes the --json summary, which must be one line.
func parseSummary(t *testing.T, out string) IngestSummary {
	t.Helper()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("--json printed %q, want one line", out)
	}
	var sum IngestSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	return sum
}

func TestIngest(t *testing.T) {
	t.Parallel()

	t.Run("StoresEventsInBatches", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		res := b.ingest(t.Context(), "", writeLines(t, cloudEvents(250)))
		if res.err != nil {
			t.Fatal(res.err)
		}
		if want := "stored 250, duplicates 0, rejected 0\n"; res.stdout != want {
			t.Errorf("printed %q, want %q", res.stdout, want)
		}
		if res.stderr != "" {
			t.Errorf("stderr %q: no progress bar without a terminal", res.stderr)
		}
		events := b.log(t)
		if len(events) != 250 {
			t.Fatalf("the log holds %d events, want 250", len(events))
		}
		requests := map[string]int{}
		for _, e := range events {
			requests[e.Metadata.Extra["request_id"]]++
		}
		if len(requests) != 3 {
			t.Errorf("events arrived in requests %v, want 3 batches", requests)
		}
		sizes := slices.Sorted(func(yield func(int) bool) {
			for _, n := range requests {
				yield(n)
			}
		})
		if !slices.Equal(sizes, []int{50, 100, 100}) {
			t.Errorf("batch sizes %v, want 50, 100, 100", sizes)
		}
		back, err := ingest.Decode(events[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(back.Data()); !strings.HasPrefix(got, `{"n": `) || !strings.HasSuffix(got, `, "total": 1.50}`) {
			t.Errorf("data stored as %s: the line's bytes must be sent as they are", got)
		}
	})

	t.Run("SameFileTwiceStoresDuplicates", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		path := writeLines(t, cloudEvents(250))
		if res := b.ingest(t.Context(), "", path); res.err != nil {
			t.Fatal(res.err)
		}
		res := b.ingest(t.Context(), "", path)
		if res.err != nil {
			t.Fatalf("second run: %v", res.err)
		}
		if want := "stored 0, duplicates 250, rejected 0\n"; res.stdout != want {
			t.Errorf("second run printed %q, want %q", res.stdout, want)
		}
		if n := len(b.log(t)); n != 250 {
			t.Errorf("the log holds %d events, want 250", n)
		}
	})

	t.Run("RejectsBadLinesAndStoresTheRest", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		lines := cloudEvents(50)
		lines[9] = `{"specversion":"1.0", this is not JSON`
		lines[29] = `{"specversion":"1.0","source":"https://example.com/orders","type":"com.example.order.placed"}` // no id
		lines = slices.Insert(lines, 5, "", "   ")                                                                  // blank lines: skipped, but counted
		res := b.ingest(t.Context(), "", writeLines(t, lines))
		if res.err == nil || res.err.Error() != "2 events rejected" {
			t.Errorf("error = %v, want \"2 events rejected\"", res.err)
		}
		got := lines2(res.stdout)
		if len(got) != 3 || got[0] != "stored 48, duplicates 0, rejected 2" {
			t.Fatalf("printed %q, want the counts and 2 rejections", got)
		}
		if !strings.HasPrefix(got[1], "line 12: not valid JSON: invalid character 't'") {
			t.Errorf("first rejection %q, want line 12 as not JSON", got[1])
		}
		if !strings.HasPrefix(got[2], "line 32: ") || !strings.Contains(got[2], "id") {
			t.Errorf("second rejection %q, want line 32 with the server's reason about its id", got[2])
		}
		if n := len(b.log(t)); n != 48 {
			t.Errorf("the log holds %d events, want 48", n)
		}
	})

	t.Run("RejectsWhatTheServerCannotLocate", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		lines := cloudEvents(20)
		// The CloudEvents decoder refuses the whole batch without saying
		// which event: the command splits the batch to find it.
		lines[12] = `{"id":"x","source":"s","type":"t"}`
		res := b.ingest(t.Context(), "", "--json", writeLines(t, lines))
		if res.err == nil {
			t.Error("no error")
		}
		sum := parseSummary(t, res.stdout)
		if sum.Stored != 19 || sum.Rejected != 1 || len(sum.Rejections) != 1 || sum.Rejections[0].Line != 13 {
			t.Errorf("summary %+v, want 19 stored and line 13 rejected", sum)
		}
		if n := len(b.log(t)); n != 19 {
			t.Errorf("the log holds %d events, want 19", n)
		}
	})

	t.Run("SplitsBatchesTooLargeForTheServer", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, &server.Config{MaxBatchBytes: 4 << 10, MaxEventBytes: 2 << 10})
		lines := cloudEvents(40)
		lines[7] = fmt.Sprintf(`{"specversion":"1.0","id":"big","source":"s","type":"t","data":{"pad":%q}}`, strings.Repeat("x", 3<<10))
		res := b.ingest(t.Context(), "", "--json", writeLines(t, lines))
		sum := parseSummary(t, res.stdout)
		if sum.Stored != 39 || sum.Rejected != 1 || sum.Rejections[0].Line != 8 || !strings.Contains(sum.Rejections[0].Reason, "413") {
			t.Errorf("summary %+v, want 39 stored and line 8 rejected as too large", sum)
		}
		if res.err == nil || res.err.Error() != "1 event rejected" {
			t.Errorf("error = %v", res.err)
		}
	})

	t.Run("Stdin", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		stdin := strings.Join(cloudEvents(30), "\r\n") // no final newline, CRLF line ends
		res := b.ingest(t.Context(), stdin, "-", "--batch", "7")
		if res.err != nil {
			t.Fatal(res.err)
		}
		if want := "stored 30, duplicates 0, rejected 0\n"; res.stdout != want {
			t.Errorf("printed %q, want %q", res.stdout, want)
		}
		if n := len(b.log(t)); n != 30 {
			t.Errorf("the log holds %d events, want 30", n)
		}
	})

	t.Run("JSONSummary", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		lines := append(cloudEvents(10), `[1, 2]`)
		res := b.ingest(t.Context(), "", "--json", writeLines(t, lines))
		if res.err == nil || res.err.Error() != "1 event rejected" {
			t.Errorf("error = %v", res.err)
		}
		sum := parseSummary(t, res.stdout)
		want := IngestSummary{
			Stored: 10, Rejected: 1, Position: 10, Requests: 1,
			Rejections: []Rejection{{Line: 11, Reason: "not a JSON object but an array (send one event per line)"}},
		}
		if fmt.Sprint(sum) != fmt.Sprint(want) {
			t.Errorf("summary\n%+v, want\n%+v", sum, want)
		}
		if !strings.Contains(res.stdout, `"rejections":[{"line":11,`) {
			t.Errorf("JSON %s", res.stdout)
		}
	})

	t.Run("ManyRejectionsAreSummarised", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		var lines []string
		for i := range 30 {
			lines = append(lines, cloudEvent(i), fmt.Sprintf("not json %d", i))
		}
		res := b.ingest(t.Context(), "", writeLines(t, lines))
		got := lines2(res.stdout)
		if len(got) != 22 || got[0] != "stored 30, duplicates 0, rejected 30" || got[21] != "… and 10 more" {
			t.Errorf("printed %q, want counts, 20 rejections and the rest counted", got)
		}
		if !strings.HasPrefix(got[1], "line 2: not valid JSON") {
			t.Errorf("first rejection %q", got[1])
		}
	})

	t.Run("Token", func(t *testing.T) {
		t.Parallel()
		const secret = "0123456789abcdef-secret"
		b := setupIngest(t, &server.Config{Tokens: []server.Token{{Name: "ci", Secret: secret, Scopes: []string{"ingest"}}}})
		path := writeLines(t, cloudEvents(250))

		res := b.ingest(t.Context(), "", path, "--token", "wrong-token-0123456789", "--concurrency", "1")
		if res.err == nil {
			t.Fatal("a wrong token succeeded")
		}
		if msg := res.err.Error(); !strings.Contains(msg, "401") || strings.Contains(msg, "\n") || strings.Contains(msg, "wrong-token") {
			t.Errorf("error = %q, want one line about the 401, without the token", msg)
		}
		if strings.Contains(res.stdout, "wrong-token") {
			t.Errorf("the token was printed: %q", res.stdout)
		}
		if n := len(b.log(t)); n != 0 {
			t.Errorf("the log holds %d events, want none", n)
		}
		if !strings.Contains(res.stdout, "stored 0, duplicates 0, rejected ") || !strings.Contains(res.stdout, "not sent") {
			t.Errorf("printed %q, want the batches in flight rejected and the rest not sent", res.stdout)
		}

		b.env["RAWEVENTS_TOKEN"] = secret
		res = b.ingest(t.Context(), "", path)
		if res.err != nil || res.stdout != "stored 250, duplicates 0, rejected 0\n" {
			t.Errorf("with RAWEVENTS_TOKEN: %q, %v", res.stdout, res.err)
		}
		if tok := b.log(t)[0].Metadata.Extra["token"]; tok != "ci" {
			t.Errorf("stored with token %q, want ci", tok)
		}
	})

	t.Run("UnreachableServer", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		gone := httptest.NewServer(http.NotFoundHandler())
		gone.Close()
		res := b.ingest(t.Context(), "", writeLines(t, cloudEvents(250)), "--server", gone.URL, "--concurrency", "1")
		if res.err == nil {
			t.Fatal("no error")
		}
		msg := res.err.Error()
		if !strings.HasPrefix(msg, "stopped: cannot reach "+gone.URL+": ") || !strings.Contains(msg, "refused") || strings.Contains(msg, "\n") {
			t.Errorf("error = %q, want one line saying the server cannot be reached", msg)
		}
		if !strings.Contains(msg, "not sent") {
			t.Errorf("error = %q, want the events not sent counted", msg)
		}
	})

	t.Run("ServerErrorsRejectTheirBatchOnly", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		var calls atomic.Int32
		flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 2 {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `{"status":503,"title":"Service Unavailable","detail":"the server is shutting down; send again"}`)
				return
			}
			http.Redirect(w, r, b.url+r.URL.Path, http.StatusTemporaryRedirect)
		}))
		t.Cleanup(flaky.Close)
		res := b.ingest(t.Context(), "", writeLines(t, cloudEvents(30)), "--server", flaky.URL, "--batch", "10", "--concurrency", "1")
		got := lines2(res.stdout)
		want := []string{
			"stored 20, duplicates 0, rejected 10",
			"lines 11-20: server answered 503 Service Unavailable: the server is shutting down; send again",
		}
		if !slices.Equal(got, want) {
			t.Errorf("printed %q, want %q", got, want)
		}
		if res.err == nil || res.err.Error() != "10 events rejected" {
			t.Errorf("error = %v", res.err)
		}
	})

	t.Run("InterruptWaitsForRequestsInFlight", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		var once sync.Once
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			once.Do(cancel) // Ctrl-C while the first batch is in flight
			http.Redirect(w, r, b.url+r.URL.Path, http.StatusTemporaryRedirect)
		}))
		t.Cleanup(slow.Close)
		res := b.ingest(ctx, "", "--json", writeLines(t, cloudEvents(50)), "--server", slow.URL, "--batch", "10", "--concurrency", "1")
		sum := parseSummary(t, res.stdout)
		if sum.Stored != 10 || sum.NotSent != 40 || sum.Stopped != "interrupted" {
			t.Errorf("summary %+v, want the batch in flight stored and 40 events not sent", sum)
		}
		if res.err == nil || res.err.Error() != "interrupted: 0 rejected, 40 not sent" {
			t.Errorf("error = %v", res.err)
		}
		if n := len(b.log(t)); n != 10 {
			t.Errorf("the log holds %d events, want 10", n)
		}
	})

	t.Run("ProgressBar", func(t *testing.T) {
		t.Parallel()
		b := setupIngest(t, nil)
		for _, input := range []string{writeLines(t, cloudEvents(120)), "-"} {
			var progress, out bytes.Buffer
			opts := &IngestOpts{
				Input: input, Stdin: strings.NewReader(strings.Join(cloudEvents(120), "\n")),
				Server: b.url, Batch: 10, Concurrency: 2, Progress: &progress,
			}
			if err := opts.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := opts.Run(t.Context(), &out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(progress.String(), "ingest") || strings.Contains(out.String(), "ingest") {
				t.Errorf("%s: progress %q, output %q: want the bar on the progress writer only", input, progress.String(), out.String())
			}
			if input != "-" && !strings.Contains(progress.String(), "/120, ") {
				t.Errorf("%s: progress %q, want a count out of 120", input, progress.String())
			}
		}
	})
}

func TestIngestBadInput(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	t.Cleanup(func() {
		srv.Close()
		if n := requests.Load(); n != 0 {
			t.Errorf("the server got %d requests; nothing may be sent when the flags are wrong", n)
		}
	})
	path := writeLines(t, cloudEvents(3))
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"MissingFile", []string{"does-not-exist.ndjson"}, "open does-not-exist.ndjson: no such file or directory"},
		{"Directory", []string{t.TempDir()}, "is a directory"},
		{"NoInput", nil, "accepts 1 arg(s), received 0"},
		{"ServerNotAURL", []string{path, "--server", "localhost:8080"}, `--server "localhost:8080": want an http:// or https:// URL`},
		{"ServerNotHTTP", []string{path, "--server", "ftp://example.com"}, `want an http:// or https:// URL`},
		{"BatchZero", []string{path, "--batch", "0"}, "--batch must be between 1 and 1000"},
		{"BatchTooLarge", []string{path, "--batch", "1001"}, "--batch must be between 1 and 1000"},
		{"ConcurrencyZero", []string{path, "--concurrency", "0"}, "--concurrency must be between 1 and 64"},
		{"TokenWithNewline", []string{path, "--token", "abc\ndef"}, "--token contains a space or a control character"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &ingestBundle{testBundle: setup(t), url: srv.URL}
			res := b.ingest(t.Context(), "", tt.args...)
			if res.err == nil || !strings.Contains(res.err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want it to contain %q", res.err, tt.wantErr)
			}
			if res.stdout != "" || res.stderr != "" {
				t.Errorf("printed stdout %q, stderr %q", res.stdout, res.stderr)
			}
			if strings.Contains(fmt.Sprint(res.err), "abc") {
				t.Errorf("error %q repeats the token", res.err)
			}
		})
	}

	t.Run("EveryProblemAtOnce", func(t *testing.T) {
		t.Parallel()
		b := &ingestBundle{testBundle: setup(t), url: srv.URL}
		res := b.ingest(t.Context(), "", "nope.ndjson", "--server", "x", "--batch", "0", "--concurrency", "-1")
		for _, want := range []string{"nope.ndjson", "--server", "--batch", "--concurrency"} {
			if res.err == nil || !strings.Contains(res.err.Error(), want) {
				t.Errorf("error = %v, want it to mention %q", res.err, want)
			}
		}
	})
}

func TestIngestServerDefault(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env, want string
	}{
		{"", "http://127.0.0.1:8080"},
		{"https://events.example.com", "https://events.example.com"},
	} {
		cmd := newRootCommand(func(name string) string {
			if name == "RAWEVENTS_SERVER" {
				return tt.env
			}
			return "from-the-environment" // RAWEVENTS_TOKEN must not show in --help
		})
		ingestCmd, _, err := cmd.Find([]string{"ingest"})
		if err != nil {
			t.Fatal(err)
		}
		if got := ingestCmd.Flags().Lookup("server").DefValue; got != tt.want {
			t.Errorf("RAWEVENTS_SERVER=%q: default --server %q, want %q", tt.env, got, tt.want)
		}
		if got := ingestCmd.Flags().Lookup("token").DefValue; got != "" {
			t.Errorf("default --token %q, want it empty", got)
		}
	}
}

// lines2 is lines, but an empty output has no lines.
func lines2(s string) []string {
	if s == "" {
		return nil
	}
	return lines(s)
}

func TestScanLines(t *testing.T) {
	t.Parallel()
	long := `{"pad":"` + strings.Repeat("x", 2<<20) + `"}` // 2 MiB: read whole
	tooLong := strings.Repeat("y", MaxIngestLineBytes+10)
	input := "\xef\xbb\xbf{\"a\":1}\r\n" + long + "\n\n" + tooLong + "\n{\"b\":2}\n" + tooLong
	type line struct {
		no      int
		size    int
		tooLong bool
	}
	var got []line
	err := scanLines(strings.NewReader(input), func(no int, l []byte, tooLong bool) bool {
		got = append(got, line{no, len(l), tooLong})
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []line{{1, 7, false}, {2, len(long), false}, {3, 0, false}, {4, 0, true}, {5, 7, false}, {6, 0, true}}
	if !slices.Equal(got, want) {
		t.Errorf("lines %+v, want %+v", got, want)
	}
}
