package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// parkedStates are the states a parked event can be in, in the order an
// event goes through them.
var parkedStates = []string{driver.ParkedWaiting, driver.ParkedRetrying, driver.ParkedSkipped, driver.ParkedResolved}

func newParkedCommand(globals *GlobalOpts, getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "parked",
		Short: "List, show, retry or skip the events a subscription parked",
		Long: "A subscription parks an event its handler keeps failing on and goes on with the next ones.\n" +
			"Retry asks the process that holds the event's partition to try it again; skip leaves it undone.\n" +
			"Both decisions are recorded, with who made them and why, in the stream " + rawevents.ParkedStream("SUBSCRIPTION") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newParkedListCommand(globals),
		newParkedShowCommand(globals),
		newParkedDecideCommand(globals, getenv, "retry", "Ask the subscription to try a parked event again"),
		newParkedDecideCommand(globals, getenv, "skip", "Mark a parked event as one the subscription will not handle"),
	)
	return cmd
}

// flatten puts s on one line, for a table cell.
func flatten(s string) string { return strings.Join(strings.Fields(s), " ") }

// parsePosition reads a position argument: a positive integer.
func parsePosition(arg string) (int64, error) {
	p, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || p < 1 {
		return 0, fmt.Errorf("position %q is not a positive integer", arg)
	}
	return p, nil
}

// parkedStores are the stores "rawevents parked" works on: state holds
// the subscription's checkpoints and parked events, log the events. They
// are one store, but for a projection's subscription on SQLite, whose
// state lives in the read-model store beside its read models.
type parkedStores struct {
	state, log Store
}

func (p *parkedStores) Close() {
	if p.state != p.log {
		p.state.Close() //nolint:errcheck // nothing to do about it
	}
	p.log.Close() //nolint:errcheck // nothing to do about it
}

// openParkedStores opens the event store and, when subscription is not
// there, the read-model store (--read-store, or the file beside an SQLite
// store) if it holds it.
func openParkedStores(ctx context.Context, g GlobalOpts, subscription string) (*parkedStores, error) {
	log, err := openStoreForRead(ctx, g.Store)
	if err != nil {
		return nil, err
	}
	_, err = log.SubscriptionStatus(ctx, subscription)
	readDSN := cmp.Or(g.ReadStore, readStoreFor(g.Store))
	if !errors.Is(err, event.ErrSubscriptionNotFound) || readDSN == g.Store {
		if err != nil {
			log.Close() //nolint:errcheck // the error is the one to report
			return nil, notFoundSubscription(subscription, err)
		}
		return &parkedStores{state: log, log: log}, nil
	}
	read, rerr := openStoreForRead(ctx, readDSN)
	if rerr == nil {
		if _, rerr = read.SubscriptionStatus(ctx, subscription); rerr == nil {
			return &parkedStores{state: read, log: log}, nil
		}
		read.Close() //nolint:errcheck // not the one
	}
	log.Close() //nolint:errcheck // the error is the one to report
	return nil, notFoundSubscription(subscription, err)
}

// findParked returns the parked record at position of subscription
// (which openParkedStores found in store), whatever its state. It fails
// with a message naming the subscription when nothing was parked at
// position.
func findParked(ctx context.Context, store Store, subscription string, position int64) (*driver.Parked, error) {
	found, err := store.Parked(ctx, subscription, &rawevents.ParkedOpts{States: parkedStates, After: position - 1, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(found) == 0 || found[0].Position != position {
		return nil, fmt.Errorf("subscription %q parked no event at position %d (see rawevents parked list %s)", subscription, position, subscription)
	}
	return &found[0], nil
}

// ParkedListOpts are the options of "rawevents parked list", which lists a
// subscription's parked events in position order.
type ParkedListOpts struct {
	GlobalOpts
	// Subscription is the subscription's name.
	Subscription string
	// States keeps the events in these states; empty keeps the ones still
	// waiting for an operator (parked and retrying).
	States []string
	// After is the position to list after.
	After int64
	// Limit is how many events to print at most; 0 prints them all.
	Limit int
}

func newParkedListCommand(globals *GlobalOpts) *cobra.Command {
	opts := &ParkedListOpts{}
	cmd := &cobra.Command{
		Use:   "list SUBSCRIPTION",
		Short: "List a subscription's parked events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.GlobalOpts = *globals
			opts.Subscription = args[0]
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.States, "state", nil, "keep events in these states: "+strings.Join(parkedStates, ", ")+"; repeatable or comma-separated (default: parked, retrying)")
	f.Int64Var(&opts.After, "after", 0, "list events parked after this position")
	f.IntVar(&opts.Limit, "limit", 0, "print at most this many events (default: all)")
	return cmd
}

// Validate checks the flags, reporting every problem at once.
func (o *ParkedListOpts) Validate() error {
	errs := []error{o.GlobalOpts.validate()}
	if o.Subscription == "" {
		errs = append(errs, errors.New("subscription name is empty"))
	}
	for _, st := range o.States {
		if !slices.Contains(parkedStates, st) {
			errs = append(errs, fmt.Errorf("--state %q is not one of %s", st, strings.Join(parkedStates, ", ")))
		}
	}
	if o.After < 0 {
		errs = append(errs, errors.New("--after must not be negative"))
	}
	if o.Limit < 0 {
		errs = append(errs, errors.New("--limit must not be negative"))
	}
	return errors.Join(errs...)
}

// Run prints the events a page at a time: a table, or with --json one
// record per line. A subscription without such events prints nothing.
func (o *ParkedListOpts) Run(ctx context.Context, out io.Writer) error {
	stores, err := openParkedStores(ctx, o.GlobalOpts, o.Subscription)
	if err != nil {
		return err
	}
	defer stores.Close()
	store := stores.state
	tw := newTable(out)
	after, left, header := o.After, o.Limit, false
	for {
		size := rawevents.DefaultPageSize
		if o.Limit > 0 && left < size {
			size = left
		}
		page, err := store.Parked(ctx, o.Subscription, &rawevents.ParkedOpts{States: o.States, After: after, Limit: size})
		if err != nil {
			return err
		}
		for _, p := range page {
			if o.JSON {
				if err := printJSON(out, p); err != nil {
					return err
				}
				continue
			}
			if !header {
				fmt.Fprintln(tw, "POSITION\tPARTITION\tSTATE\tATTEMPTS\tSTREAM\tTYPE\tPARKED AT\tERROR")
				header = true
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Position, p.Partition, p.State, p.Attempts,
				p.StreamID, p.Type, timeOrDash(p.ParkedAt), flatten(p.Error))
		}
		left -= len(page)
		if len(page) < size || (o.Limit > 0 && left == 0) {
			break
		}
		after = page[len(page)-1].Position
	}
	return tw.Flush()
}

// ParkedShowOpts are the options of "rawevents parked show", which prints
// a parked record and the stored event it is about.
type ParkedShowOpts struct {
	GlobalOpts
	// Subscription is the subscription's name.
	Subscription string
	// Position is the parked event's position in the log, as typed.
	Position string

	position int64 // set by Validate
}

func newParkedShowCommand(globals *GlobalOpts) *cobra.Command {
	opts := &ParkedShowOpts{}
	return &cobra.Command{
		Use:   "show SUBSCRIPTION POSITION",
		Short: "Print a parked event: why and how often it failed, and the event itself",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.GlobalOpts = *globals
			opts.Subscription, opts.Position = args[0], args[1]
			return run(cmd, opts)
		},
	}
}

// Validate checks the arguments, reporting every problem at once.
func (o *ParkedShowOpts) Validate() error {
	errs := []error{o.GlobalOpts.validate()}
	if o.Subscription == "" {
		errs = append(errs, errors.New("subscription name is empty"))
	}
	var err error
	if o.position, err = parsePosition(o.Position); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ParkedEvent is a parked record with the event it is about, as "parked
// show --json" prints it.
type ParkedEvent struct {
	Parked driver.Parked `json:"parked"`
	Event  event.Event   `json:"event"`
}

// Run prints the record, field by field, and the event as "read" prints
// it; with --json, both as one object.
func (o *ParkedShowOpts) Run(ctx context.Context, out io.Writer) error {
	stores, err := openParkedStores(ctx, o.GlobalOpts, o.Subscription)
	if err != nil {
		return err
	}
	defer stores.Close()
	p, err := findParked(ctx, stores.state, o.Subscription, o.position)
	if err != nil {
		return err
	}
	found, err := stores.log.Lookup(ctx, p.EventID)
	if err != nil {
		return err
	}
	if len(found) != 1 {
		return fmt.Errorf("parked event %s at position %d is not in the log", p.EventID, p.Position)
	}
	if o.JSON {
		return printJSON(out, ParkedEvent{Parked: *p, Event: found[0]})
	}
	tw := newTable(out)
	for _, row := range [][2]string{
		{"subscription", p.Subscription},
		{"position", strconv.FormatInt(p.Position, 10)},
		{"partition", strconv.Itoa(p.Partition)},
		{"state", p.State},
		{"attempts", strconv.Itoa(p.Attempts)},
		{"parked at", timeOrDash(p.ParkedAt)},
		{"updated at", timeOrDash(p.UpdatedAt)},
		{"error", flatten(p.Error)},
		{"event id", p.EventID.String()},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printEvent(out, found[0], false, true)
}

// ParkedDecideOpts are the options of "rawevents parked retry" and
// "rawevents parked skip", which record an operator's decision on a parked
// event.
type ParkedDecideOpts struct {
	GlobalOpts
	// Retry selects "retry"; false is "skip".
	Retry bool
	// Subscription is the subscription's name.
	Subscription string
	// Position is the parked event's position in the log, as typed.
	Position string
	// Actor is who decides; it is recorded with the decision.
	Actor string
	// Reason says why, for the audit trail.
	Reason string

	position int64 // set by Validate
}

func newParkedDecideCommand(globals *GlobalOpts, getenv func(string) string, verb, short string) *cobra.Command {
	opts := &ParkedDecideOpts{Retry: verb == "retry"}
	cmd := &cobra.Command{
		Use:   verb + " SUBSCRIPTION POSITION --actor WHO [--reason TEXT]",
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.GlobalOpts = *globals
			opts.Subscription, opts.Position = args[0], args[1]
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Actor, "actor", getenv("USER"), "who decides, recorded with the decision (default $USER)")
	f.StringVar(&opts.Reason, "reason", "", "why, recorded with the decision")
	return cmd
}

// Validate checks the arguments and flags, reporting every problem at
// once.
func (o *ParkedDecideOpts) Validate() error {
	errs := []error{o.GlobalOpts.validate()}
	if o.Subscription == "" {
		errs = append(errs, errors.New("subscription name is empty"))
	}
	var err error
	if o.position, err = parsePosition(o.Position); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(o.Actor) == "" {
		errs = append(errs, errors.New("--actor is required: decisions on parked events are recorded with who made them (it defaults to $USER)"))
	}
	return errors.Join(errs...)
}

// DecisionOutput is what "parked retry --json" and "parked skip --json"
// print.
type DecisionOutput struct {
	Subscription string `json:"subscription"`
	Position     int64  `json:"position"`
	// State is the event's state after the decision: retrying or skipped.
	State  string `json:"state"`
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
}

// Run records the decision. Only an event in state parked can be retried
// or skipped; anything else is an error that changes nothing.
func (o *ParkedDecideOpts) Run(ctx context.Context, out io.Writer) error {
	stores, err := openParkedStores(ctx, o.GlobalOpts, o.Subscription)
	if err != nil {
		return err
	}
	defer stores.Close() // the decision is committed or failed already
	store := stores.state
	p, err := findParked(ctx, store, o.Subscription, o.position)
	if err != nil {
		return err
	}
	notParked := func(state string) error {
		return fmt.Errorf("subscription %q: the event at position %d is %s; only parked events can be %s", o.Subscription, o.position, state, o.pastTense())
	}
	if p.State != driver.ParkedWaiting {
		return notParked(p.State)
	}
	decide, state := store.SkipParked, driver.ParkedSkipped
	if o.Retry {
		decide, state = store.RetryParked, driver.ParkedRetrying
	}
	err = decide(ctx, o.Subscription, o.position, &rawevents.ParkedDecision{Actor: o.Actor, Reason: o.Reason})
	if errors.Is(err, event.ErrParkedNotFound) {
		return notParked("no longer parked") // someone else decided first
	}
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(out, DecisionOutput{Subscription: o.Subscription, Position: o.position, State: state, Actor: o.Actor, Reason: o.Reason})
	}
	if o.Retry {
		_, err = fmt.Fprintf(out, "retry of %s position %d requested by %s; the subscription tries it again shortly\n", o.Subscription, o.position, o.Actor)
	} else {
		_, err = fmt.Fprintf(out, "skipped %s position %d (by %s)\n", o.Subscription, o.position, o.Actor)
	}
	return err
}

func (o *ParkedDecideOpts) pastTense() string {
	if o.Retry {
		return "retried"
	}
	return "skipped"
}
