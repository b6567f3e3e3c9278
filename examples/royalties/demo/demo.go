// Package demo is "rawevents demo": the royalties application end to end
// on the embedded store, fed by a simulated streaming platform: the
// platform's history is backfilled from its API, then live usage arrives
// by signed webhooks, and the read models answer over the query API.
package demo

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/examples/royalties/app"
	"github.com/rawevents/rawevents/examples/royalties/platform"
	"github.com/rawevents/rawevents/internal/cli"
	"github.com/rawevents/rawevents/internal/server"
)

// Config configures a demo run.
type Config struct {
	// Dir holds the demo's store, read models, config and logs. Default
	// ".rawevents-demo".
	Dir string
	// Fresh deletes what an earlier run left in Dir first.
	Fresh bool
	// Seed, Months and Tracks size the simulated platform (see
	// platform.Config); 0 means its defaults. A demo directory keeps the
	// size it was made with.
	Seed   uint64
	Months int
	Tracks int
	// Rate is how many live usage reports the platform sends a second; 0
	// sends them as fast as the server takes them.
	Rate float64
	// Addr is where the API listens. Default 127.0.0.1:8080.
	Addr string
	// Store is the event store: default royalties.db in Dir; a
	// postgres:// URL runs the demo on PostgreSQL (read models in the
	// same database).
	Store string
	// Headless prints no tour and returns once the live usage is sent and
	// every read model has caught up, instead of running until ctx ends.
	Headless bool
	// Progress receives the backfill's progress bar; nil shows none.
	Progress io.Writer
	// Ready, if set, receives the API's base URL once it serves.
	Ready func(base string)
}

// state is what a demo directory remembers between runs.
type state struct {
	Seed   uint64 `json:"seed"`
	Months int    `json:"months"`
	Tracks int    `json:"tracks"`
	Secret string `json:"secret"`
	// Sent counts the live deliveries done: a restart carries on after
	// them.
	Sent int `json:"sent"`
}

// Files of a demo directory.
const (
	stateFile  = "demo.json"
	configFile = "rawevents.json"
	storeFile  = "royalties.db"
	logFile    = "server.log"
	// sourceName is the platform's name as a webhook source and as a
	// backfill; eventSource the CloudEvents source of both, so that a
	// report both pulled and delivered is stored once.
	sourceName  = "platform"
	eventSource = "https://platform.example"
)

// Run runs the demo until ctx ends (or, headless, until it is done).
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	cfg.Dir = cmp.Or(cfg.Dir, ".rawevents-demo")
	cfg.Addr = cmp.Or(cfg.Addr, "127.0.0.1:8080")
	if cfg.Rate < 0 {
		return errors.New("--rate must not be negative")
	}
	st, err := prepare(cfg)
	if err != nil {
		return err
	}
	pcfg := platform.Config{Seed: st.Seed, Months: st.Months, Tracks: st.Tracks}.WithDefaults()
	if err := pcfg.Validate(); err != nil {
		return err
	}
	data := platform.Generate(pcfg)

	// The platform's history API, on a port of its own.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	platformSrv := &http.Server{Handler: platform.Handler(data), ReadHeaderTimeout: 5 * time.Second}
	go platformSrv.Serve(pl) //nolint:errcheck // ends with Close below
	defer platformSrv.Close()
	platformURL := "http://" + pl.Addr().String()

	store := cmp.Or(cfg.Store, filepath.Join(cfg.Dir, storeFile))
	if err := writeConfig(cfg, st, platformURL); err != nil {
		return err
	}
	logs, err := os.OpenFile(filepath.Join(cfg.Dir, logFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logs.Close()

	// The server: API, processor, projections, in this process.
	serveCtx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServe()
	ready := make(chan string, 1)
	serve := &cli.ServeOpts{
		GlobalOpts: cli.GlobalOpts{Store: store}, Addr: cfg.Addr, ConfigFile: filepath.Join(cfg.Dir, configFile),
		App: app.New(), ShutdownTimeout: 10 * time.Second, Ready: ready,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}
	if err := serve.Validate(); err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- serve.Run(serveCtx, logs) }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-served:
		return fmt.Errorf("server: %w (its log: %s)", err, filepath.Join(cfg.Dir, logFile))
	}
	stop := func() error {
		stopServe()
		return <-served
	}
	fmt.Fprintf(out, "rawevents demo: royalties on %s (store %s, log %s)\n", base, cli.Redact(store), filepath.Join(cfg.Dir, logFile))
	fmt.Fprintf(out, "platform: seed %d, %d months to %s, %d tracks, %d history items, %d live deliveries; history API %s\n",
		pcfg.Seed, pcfg.Months, data.Current, pcfg.Tracks, data.HistoryLen, len(data.Outbox), platformURL)
	if cfg.Ready != nil {
		cfg.Ready(base)
	}

	// The past: backfilled from the platform's API.
	started := time.Now()
	bf := &cli.BackfillOpts{
		GlobalOpts: cli.GlobalOpts{Store: store}, Name: sourceName, ConfigFile: filepath.Join(cfg.Dir, configFile),
		Actor: "demo", Progress: cfg.Progress,
	}
	if err := bf.Validate(); err != nil {
		return errors.Join(err, stop())
	}
	if err := bf.Run(ctx, out); err != nil {
		return errors.Join(err, stop())
	}
	backfilled := time.Since(started)
	if err := stages(ctx, out, base, started, backfilled); err != nil {
		if ctx.Err() != nil { // Ctrl-C while the pipeline catches up: a stop, not a failure
			fmt.Fprintln(out, "stopping while the pipeline catches up. Run the same command to carry on, --fresh to start over.")
			return stop()
		}
		return errors.Join(err, stop())
	}

	// The present: live usage by signed webhooks, carrying on after what
	// an earlier run sent.
	sendCtx, stopSend := context.WithCancel(ctx)
	defer stopSend()
	sent := make(chan error, 1)
	live := *data
	live.Outbox = data.Outbox[min(st.Sent, len(data.Outbox)):]
	var mu sync.Mutex
	go func() {
		sent <- platform.Send(sendCtx, &live, platform.SendConfig{
			URL: base + "/v1/sources/" + sourceName + "/webhook", Secret: st.Secret, Rate: cfg.Rate,
			OnDelivery: func(d platform.Delivery) {
				mu.Lock()
				defer mu.Unlock()
				st.Sent++
				if st.Sent%25 == 0 || d.Seq == d.Of {
					saveState(cfg.Dir, st) //nolint:errcheck,gosec // a lost count only sends some again
				}
			},
		})
	}()
	if !cfg.Headless {
		tour(out, base, store, data)
	}

	var sendErr error
	select {
	case sendErr = <-sent:
		if sendErr == nil && !cfg.Headless {
			fmt.Fprintf(out, "live usage: all %d deliveries sent; the server keeps running until Ctrl-C\n", len(data.Outbox))
		}
		if sendErr == nil && cfg.Headless {
			_, sendErr = caughtUp(ctx, base)
			return errors.Join(sendErr, stop())
		}
		if sendErr != nil && ctx.Err() == nil {
			fmt.Fprintf(out, "live usage stopped: %v\n", sendErr)
		}
		<-ctx.Done()
	case <-ctx.Done():
		stopSend()
		<-sent
	}
	mu.Lock()
	err = saveState(cfg.Dir, st)
	mu.Unlock()
	fmt.Fprintf(out, "stopping; %d of %d live deliveries sent. Run the same command to carry on, --fresh to start over.\n", st.Sent, len(data.Outbox))
	return errors.Join(err, stop())
}

// prepare makes or checks the demo directory and returns its state.
func prepare(cfg Config) (*state, error) {
	statePath := filepath.Join(cfg.Dir, stateFile)
	_, statErr := os.Stat(statePath)
	isDemo := statErr == nil
	if entries, err := os.ReadDir(cfg.Dir); err == nil && len(entries) > 0 && !isDemo {
		return nil, fmt.Errorf("%s is not empty and holds no %s: not a demo directory (choose another with --dir)", cfg.Dir, stateFile)
	}
	if cfg.Fresh && isDemo {
		if err := os.RemoveAll(cfg.Dir); err != nil {
			return nil, err
		}
		isDemo = false
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if isDemo {
		raw, err := os.ReadFile(statePath)
		if err != nil {
			return nil, err
		}
		var st state
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("%s: %w", statePath, err)
		}
		if (cfg.Seed != 0 && cfg.Seed != st.Seed) || (cfg.Months != 0 && cfg.Months != st.Months) || (cfg.Tracks != 0 && cfg.Tracks != st.Tracks) {
			return nil, fmt.Errorf("the demo in %s was made with --seed %d --months %d --tracks %d: give the same, or --fresh to start over",
				cfg.Dir, st.Seed, st.Months, st.Tracks)
		}
		return &st, nil
	}
	var secret [24]byte
	rand.Read(secret[:]) //nolint:errcheck // never fails
	defaults := platform.Config{}.WithDefaults()
	st := &state{Seed: cmp.Or(cfg.Seed, 1), Months: cmp.Or(cfg.Months, defaults.Months), Tracks: cmp.Or(cfg.Tracks, defaults.Tracks),
		Secret: hex.EncodeToString(secret[:])}
	return st, saveState(cfg.Dir, st)
}

func saveState(dir string, st *state) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

// writeConfig writes the server's config: the platform as a signed
// webhook source and as a backfill from its history API, under one
// CloudEvents source.
func writeConfig(cfg Config, st *state, platformURL string) error {
	file := cli.FileConfig{
		Sources: map[string]server.WebhookSource{sourceName: {
			Source: eventSource, Secret: st.Secret, SignatureHeader: platform.SignatureHeader, ID: "json:/id", Type: "json:/type",
		}},
		Backfills: map[string]backfill.HTTPConfig{sourceName: {
			Source: eventSource, URL: platformURL + "/v1/history?limit=500", CursorParam: "cursor",
			Items: "/items", Next: "/next", ID: "/id", Type: "/type",
		}},
	}
	raw, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.Dir, configFile), raw, 0o600)
}

// stages waits for the processor and then the read models to apply what
// the backfill stored, and prints when each stage was done: they run at
// once, each behind the one before.
func stages(ctx context.Context, out io.Writer, base string, started time.Time, backfilled time.Duration) error {
	var raw struct {
		Head int64 `json:"head"`
	}
	if err := getJSON(ctx, base+"/v1/subscriptions/processor:royalties", &raw); err != nil {
		return err
	}
	for {
		var st struct {
			Position int64 `json:"position"`
		}
		if err := getJSON(ctx, base+"/v1/subscriptions/processor:royalties", &st); err != nil {
			return err
		}
		if st.Position >= raw.Head {
			break
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	processed := time.Since(started)
	head, err := caughtUp(ctx, base)
	if err != nil {
		return err
	}
	projected := time.Since(started)
	fmt.Fprintf(out, "pipeline caught up in %s: ingestion (backfill) done at %s, processing at %s, read models at %s; %d events in the log, %.0f events/s through the pipeline\n",
		projected.Round(time.Millisecond), backfilled.Round(time.Millisecond), processed.Round(time.Millisecond), projected.Round(time.Millisecond),
		head, float64(head)/projected.Seconds())
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// caughtUp waits until the processor and every projection have applied
// the whole log, and returns the log's head.
func caughtUp(ctx context.Context, base string) (int64, error) {
	for {
		var list struct {
			Projections []struct {
				Head int64 `json:"head"`
			} `json:"projections"`
		}
		if err := getJSON(ctx, base+"/v1/projections", &list); err != nil {
			return 0, err
		}
		if len(list.Projections) == 0 {
			return 0, errors.New("the server runs no projections")
		}
		head := list.Projections[0].Head
		// wait_for waits for the processor, then for the read model.
		done := true
		for _, name := range []string{"catalog/track", "earnings/earnings", "unmatched/usage", "disputes/dispute"} {
			var page struct{}
			err := getJSON(ctx, fmt.Sprintf("%s/v1/read/%s?limit=1&wait_for=%d&timeout=30s", base, name, head), &page)
			if err != nil && strings.Contains(err.Error(), "504") {
				done = false
				break
			}
			if err != nil {
				return 0, err
			}
		}
		if done {
			return head, nil
		}
	}
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

// tour prints what to try.
func tour(out io.Writer, base, store string, data *platform.Data) {
	holder := data.Holders[0]
	var track struct {
		ISRC  string `json:"isrc"`
		Title string `json:"title"`
	}
	for _, it := range data.Items {
		if it.Type() == "track.registered" {
			json.Unmarshal(it.JSON(), &track) //nolint:errcheck,gosec // generated
			break
		}
	}
	word := strings.ToLower(strings.Fields(track.Title + " x")[0])
	fmt.Fprintf(out, `
Live usage is arriving by signed webhooks. Try, from another terminal:

  API docs                 %[1]s/docs
  search the catalog       curl -s '%[1]s/v1/read/catalog/track?q=%[6]s&limit=5'
  a track by ISRC          curl -s %[1]s/v1/read/catalog/track/%[2]s
  a holder's earnings      curl -s '%[1]s/v1/read/earnings/earnings?holder=%[3]s&sort=month'
  open disputes            curl -s %[1]s/v1/read/disputes/dispute
  usage waiting for shares curl -s %[1]s/v1/read/unmatched/usage
  projections and lag      curl -s %[1]s/v1/projections
  the backfill             curl -s %[1]s/v1/backfills/platform
  a track's stream         go run ./cmd/rawevents read track-%[2]s --store '%[4]s'
  its raw events           go run ./cmd/rawevents read raw:%[5]s --limit 5 --store '%[4]s'
  rebuild a read model     go run ./examples/royalties/cmd/royalties projections rebuild earnings --preview --store '%[4]s'

Ctrl-C stops; the same command carries on where it stopped.
`, base, track.ISRC, holder, store, eventSource, url.QueryEscape(word))
}
