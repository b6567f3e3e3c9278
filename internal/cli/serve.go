package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/server"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/tasks"
)

// ServeOpts are the options of "rawevents serve", which runs the HTTP API.
// Settings come, in rising order of precedence, from the config file, the
// environment (RAWEVENTS_*) and flags.
type ServeOpts struct {
	GlobalOpts
	// Addr is the listen address. Default 127.0.0.1:8080.
	Addr string
	// ConfigFile is an optional JSON file (see FileConfig).
	ConfigFile string
	// Tokens are "name:secret:scope[,scope]" values.
	Tokens []string
	// ShutdownTimeout bounds the wait for requests in flight at shutdown.
	ShutdownTimeout time.Duration
	// Logger receives the server's log. Default: text on stderr.
	Logger *slog.Logger
	// Ready, if set, receives the listener's address once it accepts
	// connections (tests use it to find a free port's number), or "" when
	// the process runs no API.
	Ready chan<- string
	// Roles are the parts this process runs: "api", "worker",
	// "projector", or several (default: all). Comma-separated items are
	// split.
	Roles []string
	// App is the application whose subscriptions the worker role runs;
	// nil runs none.
	App *App

	file      FileConfig
	tokens    []server.Token
	roles     []string
	backfills []*backfill.Backfill // the file's and the app's: the worker role works their tasks
}

// FileConfig is the JSON config file of "rawevents serve".
type FileConfig struct {
	Addr          string                          `json:"addr"`
	Store         string                          `json:"store"`
	Tokens        []server.Token                  `json:"tokens"`
	Sources       map[string]server.WebhookSource `json:"sources"`
	MaxEventBytes int64                           `json:"max_event_bytes"`
	MaxBatchBytes int64                           `json:"max_batch_bytes"`
	// Backfills are the backfills "rawevents backfill NAME" runs, by name.
	Backfills map[string]backfill.HTTPConfig `json:"backfills,omitempty"`
}

func newServeCommand(globals *GlobalOpts, getenv func(string) string) *cobra.Command {
	opts := &ServeOpts{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API: CloudEvents ingestion, webhooks, reads, docs at /docs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.GlobalOpts = *globals
			if !cmd.Flags().Changed("addr") {
				opts.Addr = getenv("RAWEVENTS_ADDR")
			}
			if !cmd.Flags().Changed("config") {
				opts.ConfigFile = getenv("RAWEVENTS_CONFIG")
			}
			if !cmd.Flags().Changed("roles") && getenv("RAWEVENTS_ROLES") != "" {
				opts.Roles = []string{getenv("RAWEVENTS_ROLES")}
			}
			opts.App = globals.app
			if !cmd.Flags().Changed("token") && getenv("RAWEVENTS_TOKENS") != "" {
				opts.Tokens = strings.Split(getenv("RAWEVENTS_TOKENS"), ";")
			}
			if !cmd.Root().PersistentFlags().Changed("store") && getenv("RAWEVENTS_STORE") == "" {
				opts.Store = "" // let the config file name it
			}
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Addr, "addr", "", "listen address (env RAWEVENTS_ADDR; default 127.0.0.1:8080)")
	f.StringVar(&opts.ConfigFile, "config", "", "JSON config file (env RAWEVENTS_CONFIG)")
	f.StringArrayVar(&opts.Tokens, "token", nil, `bearer token "name:secret:scope[,scope]" with scopes ingest, read, admin; repeatable (env RAWEVENTS_TOKENS, ';'-separated)`)
	f.StringSliceVar(&opts.Roles, "roles", allRoles, "what this process runs: api (HTTP), worker (processors and tasks), projector (read models); any of them (env RAWEVENTS_ROLES)")
	f.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to wait for requests in flight at shutdown")
	return cmd
}

// Validate reads the config file and checks every setting, reporting all
// problems at once.
func (o *ServeOpts) Validate() error {
	var errs []error
	if o.ConfigFile != "" {
		raw, err := os.ReadFile(o.ConfigFile)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o.file); err != nil {
			return fmt.Errorf("--config %s: %w", o.ConfigFile, err)
		}
	}
	o.Addr = cmp.Or(o.Addr, o.file.Addr, "127.0.0.1:8080")
	o.Store = cmp.Or(o.Store, o.file.Store, "rawevents.db")
	o.tokens = append([]server.Token(nil), o.file.Tokens...)
	for _, t := range o.Tokens {
		token, err := server.ParseToken(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("--token: %w", err)) // the value holds a secret: not repeated
			continue
		}
		o.tokens = append(o.tokens, token)
	}
	roles := o.Roles
	if len(roles) == 0 {
		roles = allRoles
	}
	roles, err := parseRoles(roles)
	if err != nil {
		errs = append(errs, err)
	}
	o.roles = roles
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: %w", o.Addr, err))
	} else if len(o.tokens) == 0 && !isLoopback(host) && slices.Contains(o.roles, RoleAPI) {
		errs = append(errs, fmt.Errorf("--addr %s is reachable from other machines: configure tokens (--token, RAWEVENTS_TOKENS) or listen on 127.0.0.1", o.Addr))
	}
	if o.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-timeout must be positive"))
	}
	// Building the file's backfills validates them.
	backfills, err := allBackfills(o.App, o.file)
	errs = append(errs, err)
	o.backfills = backfills
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Run serves until ctx ends (SIGINT or SIGTERM), then shuts down: requests
// in flight are answered once their events are durable, and the store is
// closed last.
func (o *ServeOpts) Run(ctx context.Context, out io.Writer) error {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	store, _, err := openStore(ctx, o.Store, true)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // closing after a clean shutdown
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	work := &workers{local: map[string]projection.Positioner{}}
	var closeRead func() error
	// The workers stop before the read models and the store close, on
	// every path.
	defer func() {
		stopWork()
		work.wait() //nolint:errcheck // reported below on the normal path
		if closeRead != nil {
			closeRead() //nolint:errcheck // closing after the workers stopped
		}
	}()
	if slices.Contains(o.roles, RoleWorker) {
		started, err := startWorkers(workCtx, o.App, store, o.backfills, logger)
		if err != nil {
			return err
		}
		work = started
		if len(work.names) == 0 {
			fmt.Fprintln(out, "rawevents worker: no application registered, no subscriptions to run")
		} else {
			fmt.Fprintf(out, "rawevents worker running %s\n", strings.Join(work.names, ", "))
		}
	}
	var rm readModels
	var readState server.SubscriptionStore
	if o.App != nil && len(o.App.Projections) > 0 && (slices.Contains(o.roles, RoleAPI) || slices.Contains(o.roles, RoleProjector)) {
		if rm, readState, closeRead, err = openReadModels(ctx, store, o.Store, o.ReadStore, o.App, work.local); err != nil {
			return err
		}
		if slices.Contains(o.roles, RoleProjector) {
			work.run("projections", logger, func() error { return rm.Run(workCtx) })
			fmt.Fprintf(out, "rawevents projector running %s (read models in %s)\n", strings.Join(rm.Names(), ", "), Redact(cmp.Or(o.ReadStore, readStoreFor(o.Store))))
		}
	}
	if !slices.Contains(o.roles, RoleAPI) {
		if o.Ready != nil {
			o.Ready <- ""
		}
		<-ctx.Done()
		stopWork()
		err := work.wait()
		fmt.Fprintln(out, "rawevents stopped")
		return err
	}
	serveErr := o.serveAPI(ctx, out, store, rm, readState, logger)
	// The API is down: requests in flight were answered. The workers stop
	// next, before the store closes.
	stopWork()
	workErr := work.wait()
	fmt.Fprintln(out, "rawevents stopped")
	return errors.Join(serveErr, workErr)
}

// serveAPI runs the HTTP API until ctx ends.
func (o *ServeOpts) serveAPI(ctx context.Context, out io.Writer, store Store, rm readModels, readState server.SubscriptionStore, logger *slog.Logger) error {
	// SQLite writes one transaction at a time: one committer, with larger
	// transactions to spread each commit's page writes over more events.
	// On PostgreSQL two: one transaction gathers and writes while the
	// other commits (measured against one and four: BENCHMARKS.md).
	cfg := &ingest.Config{Committers: 1, MaxBatch: 4_000}
	if isPostgres(o.Store) {
		cfg = &ingest.Config{Committers: 2}
	}
	in := ingest.New(store, cfg)
	defer in.Close()
	queue, err := openTasks(store, &tasks.Config{Logger: logger})
	if err != nil {
		return err
	}
	ui, err := queue.ui(ctx, server.TasksUIPath)
	if err != nil {
		return err
	}
	config := server.Config{
		Store: store, Ingester: in, Tokens: o.tokens, Sources: o.file.Sources,
		MaxEventBytes: o.file.MaxEventBytes, MaxBatchBytes: o.file.MaxBatchBytes, Logger: logger,
		TasksUI: ui,
	}
	if rm != nil {
		config.ReadModels, config.ReadState = rm, readState
	}
	for _, b := range o.backfills {
		config.Backfills = append(config.Backfills, b.Name)
	}
	if len(o.backfills) > 0 {
		config.RunBackfill = func(ctx context.Context, name string, restart bool) (int64, bool, error) {
			res, err := queue.insert(ctx, backfill.Args{Name: name, Restart: restart})
			if err != nil {
				return 0, false, err
			}
			return res.Job.ID, res.UniqueSkippedAsDuplicate, nil
		}
	}
	srv, err := server.New(config)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "rawevents serving %s on %s\n  API docs: %s/docs\n  tasks:    %s%s/\n  send:     curl -X POST %s/v1/events -H 'Content-Type: application/cloudevents+json' -d '{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"demo\",\"type\":\"demo.hello\",\"data\":{\"hi\":true}}'\n",
		o.Store, base, base, base, server.TasksUIPath, base)
	if len(o.tokens) == 0 {
		fmt.Fprintf(out, "  no tokens configured: listening on loopback only, without authentication\n")
	} else {
		fmt.Fprintf(out, "  %d token(s) configured: add -H 'Authorization: Bearer <secret>' to requests\n", len(o.tokens))
	}
	if o.Ready != nil {
		o.Ready <- ln.Addr().String()
	}
	err = srv.Serve(ctx, ln, o.ShutdownTimeout)
	in.Close() // commit what was queued before the store closes
	return err
}

func isPostgres(dsn string) bool {
	lower := strings.ToLower(dsn)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}
