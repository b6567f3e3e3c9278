package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// SubscriptionStore is what the subscription endpoints need of the store;
// *rawevents.Store has it whatever its driver.
type SubscriptionStore interface {
	Subscriptions(ctx context.Context) ([]string, error)
	SubscriptionStatus(ctx context.Context, name string) (*rawevents.SubscriptionStatus, error)
	Parked(ctx context.Context, subscription string, opts *rawevents.ParkedOpts) ([]driver.Parked, error)
	RetryParked(ctx context.Context, subscription string, position int64, d *rawevents.ParkedDecision) error
	SkipParked(ctx context.Context, subscription string, position int64, d *rawevents.ParkedDecision) error
}

// SubscriptionPage is a page of subscriptions, in name order, and where
// the next one starts.
type SubscriptionPage struct {
	Subscriptions []rawevents.SubscriptionStatus `json:"subscriptions"`
	// Next is the cursor of the next page (the last name returned); equal
	// to the request's when the page is empty.
	Next string `json:"next" doc:"Pass as 'after' to read the next page; equal to the request's 'after' when the page is empty."`
}

// ParkedPage is a page of a subscription's parked events, in position
// order, and where the next one starts.
type ParkedPage struct {
	Parked []driver.Parked `json:"parked"`
	// Next is the cursor of the next page (the last position returned);
	// equal to the request's when the page is empty.
	Next int64 `json:"next" doc:"Pass as 'after' to read the next page; equal to the request's 'after' when the page is empty."`
}

// DecisionRequest is the body of a retry or skip of a parked event.
type DecisionRequest struct {
	// Reason says why, for the audit trail.
	Reason string `json:"reason,omitempty" maxLength:"1000" doc:"Why, recorded with the decision."`
	// Actor is who decides, when the server runs without tokens; with
	// tokens, the token's name is recorded and Actor is ignored.
	Actor string `json:"actor,omitempty" maxLength:"200" doc:"Who decides. Required when the server runs without tokens; with tokens the token's name is recorded instead."`
}

// Decision is the answer to a retry or skip: the decision as recorded.
type Decision struct {
	Subscription string `json:"subscription"`
	Position     int64  `json:"position"`
	// State is the event's state after the decision.
	State  string `json:"state" enum:"retrying,skipped" doc:"The event's state after the decision."`
	Actor  string `json:"actor" doc:"Who decided, as recorded in the audit trail."`
	Reason string `json:"reason,omitempty"`
}

type subscriptionPageOutput struct {
	Body SubscriptionPage
}

type subscriptionOutput struct {
	Body *rawevents.SubscriptionStatus
}

type parkedPageOutput struct {
	Body ParkedPage
}

type decisionOutput struct {
	Status int
	Body   Decision
}

type decisionInput struct {
	Name     string           `path:"name" doc:"The subscription's name."`
	Position int64            `path:"position" minimum:"1" doc:"The parked event's position in the log."`
	Body     *DecisionRequest `doc:"Who decides (without tokens) and why."`
}

// subscriptionsOf returns the store that holds the parked events of
// subscription name: Store, or ReadState when only it has the name (a
// projection's subscription; its status and lag are those of
// /v1/projections, since ReadState's own log is not the one it reads).
func (s *Server) subscriptionsOf(ctx context.Context, name string) SubscriptionStore {
	if s.config.ReadState == nil {
		return s.config.Store
	}
	if _, err := s.config.Store.SubscriptionStatus(ctx, name); !errors.Is(err, event.ErrSubscriptionNotFound) {
		return s.config.Store
	}
	if _, err := s.config.ReadState.SubscriptionStatus(ctx, name); err == nil {
		return s.config.ReadState
	}
	return s.config.Store
}

func (s *Server) registerAdmin() {
	readErrors := []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity}

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-subscriptions", Method: http.MethodGet, Path: "/v1/subscriptions", Tags: []string{"subscriptions"},
		Summary:     "List subscriptions with their status",
		Description: "The subscriptions that have run, in name order, each with its position, the head of the log, its lag, how many of its events are parked, and its partitions with their checkpoints and owners.",
		Errors:      readErrors,
	}, ScopeRead), func(ctx context.Context, in *struct {
		After string `query:"after" doc:"List the subscriptions whose name sorts after this one (empty: from the first)."`
		Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size."`
	}) (*subscriptionPageOutput, error) {
		subs := s.config.Store
		names, err := subs.Subscriptions(ctx)
		if err != nil {
			return nil, s.readError(err)
		}
		slices.Sort(names)
		i, found := slices.BinarySearch(names, in.After)
		if found {
			i++
		}
		out := &subscriptionPageOutput{Body: SubscriptionPage{Subscriptions: []rawevents.SubscriptionStatus{}, Next: in.After}}
		for _, name := range names[i:min(i+in.Limit, len(names))] {
			st, err := subs.SubscriptionStatus(ctx, name)
			if err != nil {
				return nil, s.readError(err)
			}
			out.Body.Subscriptions = append(out.Body.Subscriptions, *st)
			out.Body.Next = name
		}
		return out, nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "get-subscription", Method: http.MethodGet, Path: "/v1/subscriptions/{name}", Tags: []string{"subscriptions"},
		Summary:     "Read a subscription's status",
		Description: "Its position (the lowest checkpoint of its partitions), the head of the log, its lag, how many of its events are parked, and each partition's checkpoint and lease.",
		Errors:      readErrors,
	}, ScopeRead), func(ctx context.Context, in *struct {
		Name string `path:"name" doc:"The subscription's name."`
	}) (*subscriptionOutput, error) {
		st, err := s.config.Store.SubscriptionStatus(ctx, in.Name)
		if err != nil {
			return nil, s.readError(err)
		}
		return &subscriptionOutput{Body: st}, nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-parked", Method: http.MethodGet, Path: "/v1/subscriptions/{name}/parked", Tags: []string{"subscriptions"},
		Summary: "List a subscription's parked events",
		Description: "The events the subscription's handler kept failing on, in position order, with the error and the number of attempts. " +
			"By default the ones waiting for an operator (states parked and retrying). A projection's subscription (projection:NAME:gN) " +
			"is found in the read-model store, where it keeps its state.",
		Errors: readErrors,
	}, ScopeRead), func(ctx context.Context, in *struct {
		Name  string   `path:"name" doc:"The subscription's name."`
		State []string `query:"state" enum:"parked,retrying,skipped,resolved" doc:"Keep the events in these states, comma-separated (default: parked,retrying)."`
		After int64    `query:"after" minimum:"0" doc:"List the events parked after this position (0: from the start)."`
		Limit int      `query:"limit" minimum:"1" maximum:"10000" default:"100" doc:"Page size."`
	}) (*parkedPageOutput, error) {
		subs := s.subscriptionsOf(ctx, in.Name)
		parked, err := subs.Parked(ctx, in.Name, &rawevents.ParkedOpts{States: in.State, After: in.After, Limit: in.Limit})
		if err != nil {
			return nil, s.readError(err)
		}
		if len(parked) == 0 {
			// Nothing parked, or no such subscription: tell them apart.
			if _, err := subs.SubscriptionStatus(ctx, in.Name); err != nil {
				return nil, s.readError(err)
			}
			parked = []driver.Parked{}
		}
		out := &parkedPageOutput{Body: ParkedPage{Parked: parked, Next: in.After}}
		if len(parked) > 0 {
			out.Body.Next = parked[len(parked)-1].Position
		}
		return out, nil
	})

	decide := func(retry bool) func(ctx context.Context, in *decisionInput) (*decisionOutput, error) {
		return func(ctx context.Context, in *decisionInput) (*decisionOutput, error) {
			subs := s.subscriptionsOf(ctx, in.Name)
			var body DecisionRequest
			if in.Body != nil {
				body = *in.Body
			}
			actor := tokenName(ctx)
			if actor == "" {
				actor = strings.TrimSpace(body.Actor)
			}
			if actor == "" {
				return nil, huma.Error422UnprocessableEntity("an actor is required: decisions on parked events are recorded with who made them",
					&huma.ErrorDetail{Location: "body.actor", Message: "required when the server runs without tokens"})
			}
			if _, err := subs.SubscriptionStatus(ctx, in.Name); err != nil {
				return nil, s.readError(err)
			}
			d := &rawevents.ParkedDecision{Actor: actor, Reason: body.Reason}
			var err error
			out := &decisionOutput{Body: Decision{Subscription: in.Name, Position: in.Position, Actor: actor, Reason: body.Reason}}
			if retry {
				err = subs.RetryParked(ctx, in.Name, in.Position, d)
				out.Status, out.Body.State = http.StatusAccepted, driver.ParkedRetrying
			} else {
				err = subs.SkipParked(ctx, in.Name, in.Position, d)
				out.Status, out.Body.State = http.StatusOK, driver.ParkedSkipped
			}
			if err != nil {
				return nil, s.readError(err)
			}
			return out, nil
		}
	}
	decisionErrors := []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity}
	huma.Register(s.api, secured(huma.Operation{
		OperationID: "retry-parked", Method: http.MethodPost, Path: "/v1/subscriptions/{name}/parked/{position}/retry", Tags: []string{"subscriptions"},
		Summary: "Retry a parked event",
		Description: "Asks the process that holds the event's partition to try it again, within a second or two: the event is resolved " +
			"if the handler succeeds, or parked again with the new error. Only an event in state parked can be retried (404 otherwise). " +
			"The decision is recorded, with who made it and why, in stream `" + rawevents.ParkedStream("{name}") + "`.",
		DefaultStatus: http.StatusAccepted,
		Errors:        decisionErrors,
	}, ScopeAdmin), decide(true))
	huma.Register(s.api, secured(huma.Operation{
		OperationID: "skip-parked", Method: http.MethodPost, Path: "/v1/subscriptions/{name}/parked/{position}/skip", Tags: []string{"subscriptions"},
		Summary: "Skip a parked event",
		Description: "Marks the event as one the subscription will not handle. Only an event in state parked can be skipped (404 otherwise). " +
			"The decision is recorded, with who made it and why, in stream `" + rawevents.ParkedStream("{name}") + "`.",
		Errors: decisionErrors,
	}, ScopeAdmin), decide(false))
}
