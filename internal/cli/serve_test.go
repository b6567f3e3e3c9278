package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
)

// childArgsEnv makes the test binary run the command line it holds (one
// argument per line) through Main, as the rawevents binary would.
const childArgsEnv = "RAWEVENTS_CLI_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Exit(Main(strings.Split(args, "\n")))
	}
	os.Exit(m.Run())
}

// TestServeSIGTERMKeepsAcknowledgedEvents sends SIGTERM to a serving
// process while clients are sending: the process exits cleanly, and every
// event that was answered 2xx is in the store.
func TestServeSIGTERMKeepsAcknowledgedEvents(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childArgsEnv+"="+strings.Join([]string{"serve", "--store", path, "--addr", "127.0.0.1:0"}, "\n"))
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var addr string
	for addr == "" && lines.Scan() {
		if _, rest, ok := strings.Cut(lines.Text(), " on http://"); ok {
			addr = rest
		}
	}
	if addr == "" {
		child.Process.Kill() //nolint:errcheck
		t.Fatalf("the server did not say where it listens; stderr: %s", stderr.String())
	}
	go io.Copy(io.Discard, stdout) //nolint:errcheck // the rest of its output

	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second}
	for c := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("%d-%d", c, i)
				body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"shutdown","type":"t","data":{"i":%d}}`, id, i)
				resp, err := client.Post("http://"+addr+"/v1/events", "application/cloudevents+json", strings.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	wg.Wait()

	store, _, err := openStore(context.Background(), path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys := make([]event.StreamKey, len(acked))
	for i, id := range acked {
		keys[i] = ingest.Key("shutdown", id)
	}
	found, err := store.LookupKeys(context.Background(), keys...)
	if err != nil {
		t.Fatal(err)
	}
	if len(acked) < 200 || len(found) != len(acked) {
		t.Fatalf("%d events were acknowledged, %d of them are stored", len(acked), len(found))
	}
	t.Logf("%d acknowledged events before SIGTERM, all stored", len(acked))
}

func TestServeValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badJSON := filepath.Join(dir, "bad.json")
	unknownField := filepath.Join(dir, "unknown.json")
	os.WriteFile(badJSON, []byte(`{"addr":`), 0o600)                      //nolint:errcheck
	os.WriteFile(unknownField, []byte(`{"adress":"127.0.0.1:1"}`), 0o600) //nolint:errcheck
	for _, tt := range []struct {
		name string
		opts ServeOpts
		want string
	}{
		{"PublicWithoutTokens", ServeOpts{Addr: "0.0.0.0:8080"}, "reachable from other machines"},
		{"BadAddr", ServeOpts{Addr: "nonsense"}, "--addr"},
		{"BadToken", ServeOpts{Tokens: []string{"ci:short:ingest"}}, "shorter than 16"},
		{"UnknownScope", ServeOpts{Tokens: []string{"ci:0123456789abcdef:write"}}, "unknown scope"},
		{"MissingConfig", ServeOpts{ConfigFile: filepath.Join(dir, "missing.json")}, "--config"},
		{"MalformedConfig", ServeOpts{ConfigFile: badJSON}, "--config"},
		{"UnknownConfigField", ServeOpts{ConfigFile: unknownField}, "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.ShutdownTimeout = time.Second
			err := tt.opts.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(fmt.Sprint(err), "0123456789abcdef") {
				t.Fatalf("the error repeats a secret: %v", err)
			}
		})
	}
	ok := ServeOpts{Addr: "0.0.0.0:8080", Tokens: []string{"ci:0123456789abcdef:ingest,read"}, ShutdownTimeout: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a public address with a token: %v", err)
	}
}
