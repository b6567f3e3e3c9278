package server

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/rawevents/rawevents/backfill"
)

// BackfillPage is a page of backfills, in name order, and where the next
// one starts.
type BackfillPage struct {
	// Backfills are the page's backfills, each with its progress.
	Backfills []backfill.Progress `json:"backfills"`
	// Next is the cursor of the next page (the last name returned); equal
	// to the request's when the page is empty.
	Next string `json:"next" doc:"Pass as 'after' to read the next page; equal to the request's 'after' when the page is empty."`
}

type backfillPageOutput struct {
	Body BackfillPage
}

type backfillOutput struct {
	Body *backfill.Progress
}

// BackfillRun says which task runs a backfill.
type BackfillRun struct {
	// Name is the backfill's name.
	Name string `json:"name"`
	// Task is the River task's id: the admin UI under /admin/river shows it.
	Task int64 `json:"task"`
	// Existing reports that a task of this backfill was already waiting or
	// running: this request enqueued nothing.
	Existing bool `json:"existing"`
}

type backfillRunOutput struct {
	Body BackfillRun
}

func (s *Server) registerBackfills() {
	readErrors := []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity}

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-backfills", Method: http.MethodGet, Path: "/v1/backfills", Tags: []string{"backfills"},
		Summary: "List backfills with their progress",
		Description: "The backfills that have run (\"rawevents backfill NAME\", or their River task), in name order, each with its " +
			"progress as last saved: state (in_progress, completed, failed), cursor, pages, items stored and duplicate, the source's " +
			"total when it says, and when it was last updated. An in_progress backfill whose updated_at is old has stopped; its next " +
			"run resumes at the cursor. The progress is kept as events of stream `" + backfill.Stream("{name}") + "`.",
		Errors: readErrors,
	}, ScopeRead), func(ctx context.Context, in *struct {
		After string `query:"after" doc:"List the backfills whose name sorts after this one (empty: from the first)."`
		Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size."`
	}) (*backfillPageOutput, error) {
		names, err := backfill.Names(ctx, s.config.Store)
		if err != nil {
			return nil, s.readError(err)
		}
		i, found := slices.BinarySearch(names, in.After)
		if found {
			i++
		}
		out := &backfillPageOutput{Body: BackfillPage{Backfills: []backfill.Progress{}, Next: in.After}}
		for _, name := range names[i:min(i+in.Limit, len(names))] {
			p, err := backfill.Status(ctx, s.config.Store, name)
			if err != nil {
				return nil, s.readError(err)
			}
			out.Body.Backfills = append(out.Body.Backfills, *p)
			out.Body.Next = name
		}
		return out, nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "get-backfill", Method: http.MethodGet, Path: "/v1/backfills/{name}", Tags: []string{"backfills"},
		Summary:     "Read a backfill's progress",
		Description: "Its progress as last saved; 404 when no backfill of this name has run.",
		Errors:      readErrors,
	}, ScopeRead), func(ctx context.Context, in *struct {
		Name string `path:"name" doc:"The backfill's name."`
	}) (*backfillOutput, error) {
		if backfill.ValidateName(in.Name) != nil {
			return nil, huma.Error404NotFound("no backfill of this name has run")
		}
		p, err := backfill.Status(ctx, s.config.Store, in.Name)
		if errors.Is(err, backfill.ErrNotFound) {
			return nil, huma.Error404NotFound("no backfill of this name has run")
		}
		if err != nil {
			return nil, s.readError(err)
		}
		return &backfillOutput{Body: p}, nil
	})

	if s.config.RunBackfill == nil {
		return
	}
	huma.Register(s.api, secured(huma.Operation{
		OperationID: "run-backfill", Method: http.MethodPost, Path: "/v1/backfills/{name}/run", Tags: []string{"backfills"},
		Summary: "Start a backfill as a task",
		Description: "Enqueues the River task that runs a backfill configured in this server (its config file's \"backfills\", or the " +
			"application's): a worker process works it, resuming at the saved cursor, retrying after source errors, and " +
			"reporting progress under GET /v1/backfills/{name}. A backfill already waiting or running is not enqueued twice. " +
			"A completed backfill is not pulled again unless restart is true.",
		DefaultStatus: http.StatusAccepted,
		Errors:        []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound},
	}, ScopeAdmin), func(ctx context.Context, in *struct {
		Name    string `path:"name" doc:"The backfill's name."`
		Restart bool   `query:"restart" doc:"Pull everything again from the first page."`
	}) (*backfillRunOutput, error) {
		if !slices.Contains(s.config.Backfills, in.Name) {
			return nil, huma.Error404NotFound("no backfill of this name is configured in this server")
		}
		task, existing, err := s.config.RunBackfill(ctx, in.Name, in.Restart)
		if err != nil {
			s.config.Logger.Error("enqueue backfill", "backfill", in.Name, "error", err)
			return nil, huma.Error500InternalServerError("the backfill's task could not be enqueued")
		}
		return &backfillRunOutput{Body: BackfillRun{Name: in.Name, Task: task, Existing: existing}}, nil
	})
}
