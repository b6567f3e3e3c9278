package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/danielgtaylor/huma/v2"

	"github.com/rawevents/rawevents/ingest"
)

const (
	mediaStructured = "application/cloudevents+json"
	mediaBatch      = "application/cloudevents-batch+json"
)

// rawRequest is an HTTP request as huma hands it over: the body bytes
// untouched and every header, since binary mode puts attributes in ce-*
// headers.
type rawRequest struct {
	RawBody []byte
	header  http.Header
	remote  string
}

// Resolve implements huma.Resolver.
func (r *rawRequest) Resolve(ctx huma.Context) []error {
	r.header = http.Header{}
	ctx.EachHeader(func(name, value string) { r.header.Add(name, value) })
	r.remote = ctx.RemoteAddr()
	return nil
}

func (r *rawRequest) transport(ctx context.Context, mode string) ingest.Transport {
	return ingest.Transport{
		Mode: mode, RemoteAddr: r.remote, UserAgent: r.header.Get("User-Agent"),
		ContentType: r.header.Get("Content-Type"), Token: tokenName(ctx), RequestID: r.header.Get("X-Request-Id"),
	}
}

// IngestResponse says where each event of a request is stored.
type IngestResponse struct {
	// Position is the highest position among the results: wait for it to
	// read your own writes.
	Position int64 `json:"position" doc:"Highest position among the results; wait for it to read your writes."`
	// Results has one entry per event, in request order.
	Results []ingest.Result `json:"results" doc:"One entry per event, in request order."`
}

type ingestOutput struct {
	Body IngestResponse
}

func (s *Server) registerIngest() {
	op := secured(huma.Operation{
		OperationID: "ingest-events",
		Method:      http.MethodPost,
		Path:        "/v1/events",
		Tags:        []string{"ingest"},
		Summary:     "Send CloudEvents",
		Description: "CloudEvents 1.0 over HTTP in any of its three modes: structured (`" + mediaStructured +
			"`), batched (`" + mediaBatch + "`) or binary (attributes in `ce-*` headers, the body is the data). " +
			"Each event is stored once per (source, id): a repeated delivery stores nothing and answers with the first " +
			"one's position and `duplicate: true`. A batch is all or nothing. The answer comes once the events are durable.",
		MaxBodyBytes: s.config.MaxBatchBytes,
		// The body is raw bytes in any content type; the CloudEvents
		// decoder checks it, not huma.
		SkipValidateBody: true,
		RequestBody: &huma.RequestBody{
			Required: true,
			Content: map[string]*huma.MediaType{
				mediaStructured: {Schema: &huma.Schema{Type: "object", Description: "One CloudEvent in the JSON format."}},
				mediaBatch:      {Schema: &huma.Schema{Type: "array", Description: "CloudEvents in the JSON format.", Items: &huma.Schema{Type: "object"}}},
				"*/*":           {Schema: &huma.Schema{Type: "string", Format: "binary", Description: "Binary mode: the data, with the attributes in ce-* headers."}},
			},
		},
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType},
	}, ScopeIngest)
	huma.Register(s.api, op, func(ctx context.Context, in *rawRequest) (*ingestOutput, error) {
		events, mode, err := s.decodeCloudEvents(in)
		if err != nil {
			return nil, err
		}
		raws := make([]ingest.Raw, len(events))
		transport := in.transport(ctx, mode)
		for i, e := range events {
			raws[i] = ingest.Raw{Event: e, Transport: transport}
		}
		return s.ingest(ctx, raws)
	})
}

// decodeCloudEvents reads a request in whichever CloudEvents HTTP mode it
// uses, with the CloudEvents SDK's own decoder.
func (s *Server) decodeCloudEvents(in *rawRequest) ([]ce.Event, string, error) {
	mediaType, _, _ := mime.ParseMediaType(in.header.Get("Content-Type"))
	req, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(in.RawBody))
	if err != nil {
		return nil, "", err
	}
	req.Header = in.header
	switch {
	case mediaType == mediaBatch:
		events, err := cehttp.NewEventsFromHTTPRequest(req)
		if err != nil {
			return nil, "", huma.Error400BadRequest("malformed CloudEvents batch: " + oneLine(err))
		}
		for i, e := range events {
			if int64(len(e.Data())) > s.config.MaxEventBytes {
				return nil, "", huma.NewError(http.StatusRequestEntityTooLarge,
					fmt.Sprintf("event %d: data is larger than %d bytes", i, s.config.MaxEventBytes))
			}
		}
		return events, "batch", nil
	case mediaType == mediaStructured || in.header.Get("Ce-Specversion") != "":
		if int64(len(in.RawBody)) > s.config.MaxEventBytes {
			return nil, "", huma.NewError(http.StatusRequestEntityTooLarge,
				fmt.Sprintf("an event is larger than %d bytes; send at most that, or a batch", s.config.MaxEventBytes))
		}
		e, err := cehttp.NewEventFromHTTPRequest(req)
		if err != nil {
			return nil, "", huma.Error400BadRequest("malformed CloudEvent: " + oneLine(err))
		}
		mode := "binary"
		if mediaType == mediaStructured {
			mode = "structured"
		}
		return []ce.Event{*e}, mode, nil
	}
	return nil, "", huma.NewError(http.StatusUnsupportedMediaType, fmt.Sprintf(
		"Content-Type %q is not a CloudEvents mode: send %s, %s, or binary mode with ce-specversion, ce-id, ce-source and ce-type headers",
		in.header.Get("Content-Type"), mediaStructured, mediaBatch))
}

// ingest stores raw events and maps the outcome to a response or a
// problem detail.
func (s *Server) ingest(ctx context.Context, raws []ingest.Raw) (*ingestOutput, error) {
	results, err := s.config.Ingester.Ingest(ctx, raws)
	var invalid *ingest.InvalidError
	switch {
	case errors.As(err, &invalid):
		return nil, huma.Error400BadRequest("invalid CloudEvent", &huma.ErrorDetail{
			Location: fmt.Sprintf("body[%d]", invalid.Index), Message: invalid.Reason,
		})
	case errors.Is(err, ingest.ErrClosed):
		return nil, huma.Error503ServiceUnavailable("the server is shutting down; send again")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, huma.Error503ServiceUnavailable("the request ended before its events were queued; nothing was stored")
	case err != nil:
		s.config.Logger.Error("ingest failed", "error", err)
		return nil, huma.Error500InternalServerError("the events could not be stored; nothing was stored, send again")
	}
	out := &ingestOutput{Body: IngestResponse{Results: results}}
	for _, r := range results {
		out.Body.Position = max(out.Body.Position, r.Position)
	}
	return out, nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
