package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
)

// Store is what the server reads; *rawevents.Store satisfies it whatever
// its driver.
type Store interface {
	ReadAll(ctx context.Context, opts *rawevents.ReadAllOpts) ([]event.Event, error)
	ReadStream(ctx context.Context, streamID string, opts *rawevents.ReadStreamOpts) ([]event.Event, error)
	LookupKeys(ctx context.Context, keys ...event.StreamKey) ([]event.Event, error)
	SubscriptionStore
}

// EventPage is a page of events and where the next one starts.
type EventPage struct {
	Events []event.Event `json:"events"`
	// Next is the cursor of the next page (the last position or version
	// returned); equal to the request's when the page is empty.
	Next int64 `json:"next" doc:"Pass as 'after' (log) or 'from' minus one (stream) to read the next page."`
}

type pageOutput struct {
	Body EventPage
}

type rawEventOutput struct {
	ContentType   string `header:"Content-Type"`
	Position      int64  `header:"Rawevents-Position" doc:"The event's position in the global log."`
	StreamVersion int64  `header:"Rawevents-Stream-Version" doc:"The event's version in stream raw:<source>."`
	Body          []byte
}

func (s *Server) registerReads() {
	huma.Register(s.api, secured(huma.Operation{
		OperationID: "read-log", Method: http.MethodGet, Path: "/v1/events", Tags: []string{"read"},
		Summary:     "Read the global log",
		Description: "Events after a position, in position order: raw events and domain events alike. A reader never skips an event whose transaction may still commit.",
		Errors:      []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden},
	}, ScopeRead), func(ctx context.Context, in *struct {
		After int64 `query:"after" minimum:"0" doc:"Read events after this position (0: from the start)."`
		Limit int   `query:"limit" minimum:"1" maximum:"10000" default:"100" doc:"Page size."`
	}) (*pageOutput, error) {
		events, err := s.config.Store.ReadAll(ctx, &rawevents.ReadAllOpts{After: in.After, Limit: in.Limit})
		if err != nil {
			return nil, s.readError(err)
		}
		out := &pageOutput{Body: EventPage{Events: nonNil(events), Next: in.After}}
		if len(events) > 0 {
			out.Body.Next = events[len(events)-1].Position
		}
		return out, nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "read-raw-event", Method: http.MethodGet, Path: "/v1/raw-events", Tags: []string{"read"},
		Summary: "Read one raw event by its CloudEvents source and id",
		Description: "Answers with the CloudEvent as stored, in structured mode (`" + mediaStructured + "`): its payload " +
			"byte for byte, in `data` for JSON and `data_base64` otherwise. Where it is in the log is in the " +
			"Rawevents-Position and Rawevents-Stream-Version headers.",
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound},
	}, ScopeRead), func(ctx context.Context, in *struct {
		Source string `query:"source" required:"true" minLength:"1" doc:"The CloudEvents source attribute."`
		ID     string `query:"id" required:"true" minLength:"1" doc:"The CloudEvents id attribute."`
	}) (*rawEventOutput, error) {
		events, err := s.config.Store.LookupKeys(ctx, ingest.Key(in.Source, in.ID))
		if err != nil {
			return nil, s.readError(err)
		}
		if len(events) == 0 {
			return nil, huma.Error404NotFound("no raw event with this source and id")
		}
		e := events[0]
		return &rawEventOutput{ContentType: mediaStructured, Position: e.Position, StreamVersion: e.StreamVersion, Body: e.Data}, nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "read-stream", Method: http.MethodGet, Path: "/v1/streams/{stream}/events", Tags: []string{"read"},
		Summary:     "Read a stream's events",
		Description: "A source's raw events are in stream `raw:<source>`.",
		Errors:      []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden},
	}, ScopeRead), func(ctx context.Context, in *struct {
		Stream    string `path:"stream" doc:"The stream id."`
		From      int64  `query:"from" minimum:"0" doc:"First version to return (forwards: 0 means 1; backwards: 0 means the last)."`
		Backwards bool   `query:"backwards" doc:"Read from the end towards version 1."`
		Limit     int    `query:"limit" minimum:"1" maximum:"10000" default:"100" doc:"Page size."`
	}) (*pageOutput, error) {
		events, err := s.config.Store.ReadStream(ctx, in.Stream, &rawevents.ReadStreamOpts{From: in.From, Backwards: in.Backwards, Limit: in.Limit})
		if err != nil {
			return nil, s.readError(err)
		}
		out := &pageOutput{Body: EventPage{Events: nonNil(events), Next: in.From}}
		if len(events) > 0 {
			out.Body.Next = events[len(events)-1].StreamVersion
		}
		return out, nil
	})
}

func (s *Server) readError(err error) error {
	var ve *event.ValidationError
	if errors.As(err, &ve) {
		return huma.Error400BadRequest(ve.Error())
	}
	if errors.Is(err, event.ErrSubscriptionNotFound) {
		return huma.Error404NotFound("no subscription of this name has run")
	}
	if errors.Is(err, event.ErrParkedNotFound) {
		return huma.Error404NotFound("no event is parked at this position (retry and skip act on events in state parked)")
	}
	if errors.Is(err, context.Canceled) {
		return huma.Error503ServiceUnavailable("request cancelled")
	}
	s.config.Logger.Error("read failed", "error", err)
	return huma.Error500InternalServerError("the store could not be read")
}

func nonNil(events []event.Event) []event.Event {
	if events == nil {
		return []event.Event{}
	}
	return events
}
