// Package server is rawevents' HTTP API: CloudEvents ingestion, signed
// webhooks, reads of the log, and queries of the read models, built with huma on net/http. Every error
// is an RFC 9457 problem detail; the OpenAPI 3.1 description is served at
// /openapi.json and /openapi.yaml and rendered, offline, at /docs.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/apidocs"
)

// Limits on request bodies.
const (
	// DefaultMaxEventBytes is the largest single event (structured or
	// binary body, or one item of a batch).
	DefaultMaxEventBytes = 1 << 20
	// DefaultMaxBatchBytes is the largest request body.
	DefaultMaxBatchBytes = 10 << 20
)

// Config configures a Server.
type Config struct {
	// Store is the event store the server writes to and reads from.
	Store Store
	// Ingester stores raw events; it must write to Store.
	Ingester *ingest.Ingester
	// Tokens are the bearer tokens clients may use. None means no
	// authentication, which the caller must only allow on loopback.
	Tokens []Token
	// Sources configures the senders of webhooks, by source name.
	Sources map[string]WebhookSource
	// MaxEventBytes and MaxBatchBytes bound request sizes (413 beyond).
	MaxEventBytes, MaxBatchBytes int64
	// Logger receives one line per failed request. Default slog.Default().
	Logger *slog.Logger
	// ReadModels, when set, are the projections the query API serves
	// under /v1/read and reports on under /v1/projections.
	ReadModels ReadModels
	// TasksUI, when set, is the task queue's web UI, served under
	// TasksUIPath to admin tokens only.
	TasksUI http.Handler
	// ReadState, when set, is the read models' store where it is not
	// Store: the subscriptions of projections keep their state (and their
	// parked events) there. The subscription endpoints look a name up in
	// Store first, then in ReadState.
	ReadState SubscriptionStore
	// Backfills are the names of the backfills RunBackfill can start.
	Backfills []string
	// RunBackfill, when set, enqueues the task that runs the backfill
	// name (backfill.Args, from the first page when restart) and returns
	// the task's id, and whether such a task was already waiting or
	// running (then nothing was enqueued).
	RunBackfill func(ctx context.Context, name string, restart bool) (task int64, existing bool, err error)
}

// TasksUIPath is where the task queue's web UI is served.
const TasksUIPath = "/admin/river"

// Server is the HTTP API.
type Server struct {
	config  Config
	api     huma.API
	handler http.Handler
}

// New builds the API on a fresh ServeMux.
func New(config Config) (*Server, error) {
	if config.Store == nil || config.Ingester == nil {
		return nil, errors.New("server: Store and Ingester are required")
	}
	if config.MaxEventBytes == 0 {
		config.MaxEventBytes = DefaultMaxEventBytes
	}
	if config.MaxBatchBytes == 0 {
		config.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if config.Logger == nil {
		config.Logger = slog.Default()
	}
	if err := validateTokens(config.Tokens); err != nil {
		return nil, err
	}
	if err := validateSources(config.Sources); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	hc := huma.DefaultConfig("rawevents API", "1.0.0")
	hc.Info.Description = "Send raw events (CloudEvents over HTTP, signed webhooks), read the event log back, and query the read models projected from it."
	hc.DocsPath = ""     // served offline by apidocs below
	hc.CreateHooks = nil // no "$schema" link in every response body
	hc.OpenAPIPath = "/openapi"
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "A token from the server's configuration, with the scope the operation names."},
	}
	api := humago.New(mux, hc)
	s := &Server{config: config, api: api}
	api.UseMiddleware(s.authenticate)

	s.registerHealth()
	s.registerIngest()
	s.registerWebhooks()
	s.registerReads()
	s.registerAdmin()
	s.registerBackfills()
	if config.ReadModels != nil {
		s.registerReadModels()
	}
	apidocs.Mount(mux, "/openapi.yaml")
	if config.TasksUI != nil {
		mux.Handle(TasksUIPath+"/", s.requireAdmin(config.TasksUI))
		mux.Handle(TasksUIPath, http.RedirectHandler(TasksUIPath+"/", http.StatusMovedPermanently))
	}
	s.handler = mux
	return s, nil
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// API returns the huma API, for tests and for printing the OpenAPI
// description.
func (s *Server) API() huma.API { return s.api }

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting connections and waits (up to shutdownTimeout) for requests in
// flight, which are answered only once their events are durable.
func (s *Server) Serve(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.config.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func (s *Server) registerHealth() {
	type status struct {
		Body struct {
			Status string `json:"status" example:"ok"`
		}
	}
	huma.Register(s.api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"health"},
		Summary: "Liveness: the process is up",
	}, func(ctx context.Context, _ *struct{}) (*status, error) {
		out := &status{}
		out.Body.Status = "ok"
		return out, nil
	})
	huma.Register(s.api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"health"},
		Summary: "Readiness: the store answers",
	}, func(ctx context.Context, _ *struct{}) (*status, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := s.config.Store.ReadAll(ctx, nil); err != nil {
			return nil, huma.Error503ServiceUnavailable("the store does not answer")
		}
		out := &status{}
		out.Body.Status = "ready"
		return out, nil
	})
}
