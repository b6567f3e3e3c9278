package domain

import (
	"context"

	"errors"
	"fmt"
	"github.com/rawevents/rawevents"
	"reflect"
)

// Command asks one aggregate instance to do something. Commands are plain
// values: a processor returns them and a test compares them.
type Command interface {
	// AggregateID is the id of the instance the command is for.
	AggregateID() string
}

// Router sends each command to the decision registered for its Go type.
// It is built once at start (Route) and then only read.
type Router[TTx any] struct {
	routes map[reflect.Type]route[TTx]
}

type route[TTx any] struct {
	inTx func(ctx context.Context, tx TTx, cmd Command, opts *ExecuteOpts) error
	own  func(ctx context.Context, cmd Command, opts *ExecuteOpts) error
	plan func(ctx context.Context, tx TTx, b *batchTx[TTx], cmd Command, opts *ExecuteOpts) error
	// store is the store of the route's repository.
	store *rawevents.Store[TTx]
}

// NewRouter returns an empty router.
func NewRouter[TTx any]() *Router[TTx] {
	return &Router[TTx]{routes: map[reflect.Type]route[TTx]{}}
}

// Route sends commands of type C to decide, against the state of the
// instance of repo's aggregate that the command names. It fails when C is
// routed already.
func Route[TTx, S any, C Command](r *Router[TTx], repo *Repository[TTx, S], decide func(state S, cmd C) ([]any, error)) error {
	t := reflect.TypeFor[C]()
	if _, ok := r.routes[t]; ok {
		return fmt.Errorf("route %v: already routed", t)
	}
	decision := func(c C) Decision[S] { return func(s S) ([]any, error) { return decide(s, c) } }
	r.routes[t] = route[TTx]{
		inTx: func(ctx context.Context, tx TTx, cmd Command, opts *ExecuteOpts) error {
			c := cmd.(C)
			_, err := repo.ExecuteTx(ctx, tx, c.AggregateID(), decision(c), opts)
			return err
		},
		own: func(ctx context.Context, cmd Command, opts *ExecuteOpts) error {
			c := cmd.(C)
			_, err := repo.Execute(ctx, c.AggregateID(), decision(c), opts)
			return err
		},
		plan: func(ctx context.Context, tx TTx, b *batchTx[TTx], cmd Command, opts *ExecuteOpts) error {
			c := cmd.(C)
			return repo.planTx(ctx, tx, b, c.AggregateID(), decision(c), opts)
		},
		store: repo.store,
	}
	return nil
}

// RouteDecide is Route for commands that decide for themselves: pass the
// method expression, as in RouteDecide(router, accounts, Withdraw.Decide).
func RouteDecide[TTx, S any, C Command](r *Router[TTx], repo *Repository[TTx, S], decide func(cmd C, state S) ([]any, error)) error {
	return Route(r, repo, func(s S, c C) ([]any, error) { return decide(c, s) })
}

// Execute executes cmd in a transaction of its own, deciding again after
// a concurrent append (see Repository.Execute).
func (r *Router[TTx]) Execute(ctx context.Context, cmd Command, opts *ExecuteOpts) error {
	route, err := r.route(cmd)
	if err != nil {
		return err
	}
	return route.own(ctx, cmd, opts)
}

// ExecuteTx executes cmd inside tx, once (see Repository.ExecuteTx). A
// command of a type that is not routed fails.
func (r *Router[TTx]) ExecuteTx(ctx context.Context, tx TTx, cmd Command, opts *ExecuteOpts) error {
	route, err := r.route(cmd)
	if err != nil {
		return err
	}
	return route.inTx(ctx, tx, cmd, opts)
}

func (r *Router[TTx]) route(cmd Command) (route[TTx], error) {
	route, ok := r.routes[reflect.TypeOf(cmd)]
	if !ok {
		return route, fmt.Errorf("execute %T: %w", cmd, ErrNoRoute)
	}
	return route, nil
}

// ErrNoRoute means a command's type was not routed to any aggregate.
var ErrNoRoute = errors.New("no route for this command type")
