package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/rawevents/rawevents/projection"
)

// ReadModels is what the query API needs of the projections;
// *projection.Projector has it whatever its backend.
type ReadModels interface {
	Names() []string
	Projection(name string) (*projection.Projection, error)
	List(ctx context.Context, name, table string, q *projection.Query) (*projection.Page, error)
	Get(ctx context.Context, name, table, key string) (projection.Row, error)
	Reflects(ctx context.Context, name string) (int64, error)
	WaitFor(ctx context.Context, name string, position int64, timeout time.Duration) error
	Status(ctx context.Context, name string) (*projection.Status, error)
}

// Bounds of wait_for.
const (
	defaultWaitTimeout = 5 * time.Second
	maxWaitTimeout     = 30 * time.Second
)

// RowsPage is a page of a read model's rows.
type RowsPage struct {
	// Position is the position of the log whose effects the read model
	// shows in full; compare it with the position an ingestion answered.
	Position int64            `json:"position" doc:"The read model shows the effects of every event up to this position of the log, through the processors. A write whose position is above it is not visible yet."`
	Rows     []projection.Row `json:"rows"`
	Next     string           `json:"next,omitempty" doc:"Pass as 'cursor' to read the next page; absent on the last page."`
	Ranked   int              `json:"ranked,omitempty" doc:"Sorted by relevance: how many matches were ranked and are paged through. At 1000, more rows may match: sort by a column to page through them all."`
}

// RowAnswer is one row of a read model.
type RowAnswer struct {
	Position int64          `json:"position" doc:"As in a page of rows."`
	Row      projection.Row `json:"row"`
}

// ProjectionList is the status of every projection.
type ProjectionList struct {
	Projections []projection.Status `json:"projections"`
}

// readQuery holds the parameters every read of a read model takes. Huma
// does not read the parameters of embedded structs: each input declares
// them itself.
type readQuery struct {
	WaitFor int64
	Timeout string
}

// wait does what wait_for asks and returns the position to report.
func (s *Server) wait(ctx context.Context, name string, q readQuery) (int64, error) {
	if q.WaitFor > 0 {
		timeout := defaultWaitTimeout
		if q.Timeout != "" {
			d, err := time.ParseDuration(q.Timeout)
			if err != nil || d <= 0 || d > maxWaitTimeout {
				return 0, huma.Error400BadRequest(fmt.Sprintf("timeout: %q is not a duration from 1ms to %s", q.Timeout, maxWaitTimeout))
			}
			timeout = d
		}
		if err := s.config.ReadModels.WaitFor(ctx, name, q.WaitFor, timeout); err != nil {
			return 0, s.readModelError(err)
		}
	}
	position, err := s.config.ReadModels.Reflects(ctx, name)
	if err != nil {
		return 0, s.readModelError(err)
	}
	return position, nil
}

// listInput is a list query; the filters are read from the URL by
// Resolve, as they differ per table.
type listInput struct {
	WaitFor int64  `query:"wait_for" minimum:"0" doc:"Wait until the read model shows the effects of every event up to this position (the one an ingestion answered with) before answering; 504 if it does not within the timeout."`
	Timeout string `query:"timeout" doc:"How long wait_for may wait, as a Go duration (default 5s, at most 30s)."`
	Q       string `query:"q" maxLength:"500" doc:"Full-text search over the table's search columns: words (stemmed), \"quoted phrases\", -excluded words, OR."`
	Sort    string `query:"sort" doc:"A key or indexed column, '-column' for descending; 'relevance' with q. Default: relevance with q, the key without."`
	Limit   int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size."`
	Cursor  string `query:"cursor" doc:"The 'next' of the previous page."`

	filters map[string]string
}

// Resolve collects the filters: query parameters named after columns.
func (in *listInput) Resolve(ctx huma.Context) []error {
	in.filters = map[string]string{}
	u := ctx.URL()
	for name, values := range u.Query() {
		if slices.Contains([]string{"wait_for", "timeout", "q", "sort", "limit", "cursor"}, name) {
			continue
		}
		if len(values) != 1 {
			return []error{&huma.ErrorDetail{Location: "query." + name, Message: "give a filter once"}}
		}
		in.filters[name] = values[0]
	}
	return nil
}

type rowsOutput struct {
	Body RowsPage
}

type rowOutput struct {
	Body RowAnswer
}

func (s *Server) registerReadModels() {
	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-projections", Method: http.MethodGet, Path: "/v1/projections", Tags: []string{"projections"},
		Summary:     "Projections and how far each is",
		Description: "Position, lag in events and seconds, state (catching_up, live, rebuilding, stopped, failed, needs_rebuild), parked events, versions, and the progress of a rebuild.",
		Errors:      []int{http.StatusUnauthorized, http.StatusForbidden},
	}, ScopeRead), func(ctx context.Context, _ *struct{}) (*struct{ Body ProjectionList }, error) {
		out := &struct{ Body ProjectionList }{Body: ProjectionList{Projections: []projection.Status{}}}
		for _, name := range s.config.ReadModels.Names() {
			st, err := s.config.ReadModels.Status(ctx, name)
			if err != nil {
				return nil, s.readModelError(err)
			}
			out.Body.Projections = append(out.Body.Projections, *st)
		}
		return out, nil
	})
	huma.Register(s.api, secured(huma.Operation{
		OperationID: "get-projection", Method: http.MethodGet, Path: "/v1/projections/{name}", Tags: []string{"projections"},
		Summary: "One projection's status",
		Errors:  []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound},
	}, ScopeRead), func(ctx context.Context, in *struct {
		Name string `path:"name"`
	}) (*struct{ Body *projection.Status }, error) {
		st, err := s.config.ReadModels.Status(ctx, in.Name)
		if err != nil {
			return nil, s.readModelError(err)
		}
		return &struct{ Body *projection.Status }{Body: st}, nil
	})
	for _, name := range s.config.ReadModels.Names() {
		pr, err := s.config.ReadModels.Projection(name)
		if err != nil {
			continue
		}
		for _, t := range pr.Tables {
			s.registerTable(pr, t)
		}
	}
}

// registerTable registers the list and get operations of one table, with
// its filters documented.
func (s *Server) registerTable(pr *projection.Projection, t projection.Table) {
	name, table := pr.Name, t.Name
	var filters []*huma.Param
	for _, c := range t.Columns {
		if c.Index || slices.Contains(t.Key, c.Name) {
			filters = append(filters, &huma.Param{
				Name: c.Name, In: "query", Description: fmt.Sprintf("Keep rows whose %s equals this (%s).", c.Name, c.Type),
				Schema: &huma.Schema{Type: "string"},
			})
		}
	}
	search := ""
	if len(t.Search) > 0 {
		search = fmt.Sprintf(" Full-text search (q) covers %v.", t.Search)
	}
	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-" + name + "-" + table, Method: http.MethodGet, Path: "/v1/read/" + name + "/" + table,
		Tags: []string{"read models"}, Parameters: filters,
		Summary:     fmt.Sprintf("List %s %s", name, table),
		Description: "Rows of the read model, filtered on key and indexed columns, sorted, searched, a page at a time." + search,
		Errors:      []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusGatewayTimeout},
	}, ScopeRead), func(ctx context.Context, in *listInput) (*rowsOutput, error) {
		position, err := s.wait(ctx, name, readQuery{in.WaitFor, in.Timeout})
		if err != nil {
			return nil, err
		}
		page, err := s.config.ReadModels.List(ctx, name, table, &projection.Query{
			Filters: in.filters, Sort: in.Sort, Search: in.Q, Limit: in.Limit, Cursor: in.Cursor,
		})
		if err != nil {
			return nil, s.readModelError(err)
		}
		return &rowsOutput{Body: RowsPage{Position: position, Rows: page.Rows, Next: page.Next, Ranked: page.Ranked}}, nil
	})
	if len(t.Key) != 1 {
		return
	}
	huma.Register(s.api, secured(huma.Operation{
		OperationID: "get-" + name + "-" + table, Method: http.MethodGet, Path: "/v1/read/" + name + "/" + table + "/{key}",
		Tags:    []string{"read models"},
		Summary: fmt.Sprintf("Get a %s %s by %s", name, table, t.Key[0]),
		Errors:  []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGatewayTimeout},
	}, ScopeRead), func(ctx context.Context, in *struct {
		WaitFor int64  `query:"wait_for" minimum:"0" doc:"As for a list."`
		Timeout string `query:"timeout" doc:"As for a list."`
		Key     string `path:"key"`
	}) (*rowOutput, error) {
		position, err := s.wait(ctx, name, readQuery{in.WaitFor, in.Timeout})
		if err != nil {
			return nil, err
		}
		row, err := s.config.ReadModels.Get(ctx, name, table, in.Key)
		if err != nil {
			return nil, s.readModelError(err)
		}
		return &rowOutput{Body: RowAnswer{Position: position, Row: row}}, nil
	})
}

func (s *Server) readModelError(err error) error {
	switch {
	case errors.Is(err, projection.ErrInvalid):
		return huma.Error400BadRequest(err.Error())
	case errors.Is(err, projection.ErrNotFound):
		return huma.Error404NotFound(err.Error())
	case errors.Is(err, projection.ErrWaitTimeout):
		return huma.NewError(http.StatusGatewayTimeout, err.Error())
	case errors.Is(err, projection.ErrIndexing):
		return huma.Error503ServiceUnavailable(err.Error())
	}
	return s.readError(err)
}
