package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// notFoundSubscription turns the store's "subscription not found" into a
// message that names it, without the driver's wording.
func notFoundSubscription(name string, err error) error {
	if errors.Is(err, event.ErrSubscriptionNotFound) {
		return fmt.Errorf("subscription %q not found (see rawevents subscriptions)", name)
	}
	return err
}

// printJSON writes v as one line of JSON.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// newTable returns a writer that aligns tab-separated columns, two spaces
// apart. The caller flushes it.
func newTable(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
}

// timeOrDash formats t for a table, or "-" when it is zero.
func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// SubscriptionsOpts are the options of "rawevents subscriptions", which
// lists the subscriptions that have run with how far each is.
type SubscriptionsOpts struct {
	GlobalOpts
	// Now is the clock that tells live leases from lapsed ones; nil means
	// time.Now.
	Now func() time.Time
}

func newSubscriptionsCommand(globals *GlobalOpts) *cobra.Command {
	opts := &SubscriptionsOpts{}
	cmd := &cobra.Command{
		Use:     "subscriptions",
		Aliases: []string{"subs"},
		Short:   "List subscriptions: position, head, lag, parked events, partitions and owners",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.GlobalOpts = *globals
			return run(cmd, opts)
		},
	}
	cmd.AddCommand(newSubscriptionShowCommand(globals))
	return cmd
}

// Validate checks the flags.
func (o *SubscriptionsOpts) Validate() error { return o.GlobalOpts.validate() }

// Run prints one line per subscription, in name order: a table, or with
// --json one status object per line.
func (o *SubscriptionsOpts) Run(ctx context.Context, out io.Writer) error {
	store, err := openStoreForRead(ctx, o.Store)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // nothing was written
	names, err := store.Subscriptions(ctx)
	if err != nil {
		return err
	}
	statuses := make([]*rawevents.SubscriptionStatus, 0, len(names))
	for _, name := range names {
		st, err := store.SubscriptionStatus(ctx, name)
		if err != nil {
			return notFoundSubscription(name, err)
		}
		statuses = append(statuses, st)
	}
	if o.JSON {
		for _, st := range statuses {
			if err := printJSON(out, st); err != nil {
				return err
			}
		}
		return nil
	}
	if len(statuses) == 0 {
		_, err := fmt.Fprintln(out, "no subscriptions have run")
		return err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "NAME\tSTATE\tPOSITION\tHEAD\tLAG\tPARKED\tPARTITIONS\tOWNERS")
	for _, st := range statuses {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", st.Name, st.State, st.Position, st.Head, st.Lag, st.Parked, len(st.Partitions), owners(st.Partitions, now()))
	}
	return tw.Flush()
}

// owners lists the processes holding partitions, each with how many it
// holds, in name order; "-" when no lease is live.
func owners(partitions []driver.PartitionStatus, now time.Time) string {
	held := map[string]int{}
	for _, p := range partitions {
		if p.Owner != "" && p.LeaseUntil.After(now) {
			held[p.Owner]++
		}
	}
	if len(held) == 0 {
		return "-"
	}
	names := make([]string, 0, len(held))
	for name := range held {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		names[i] = fmt.Sprintf("%s (%d)", name, held[name])
	}
	return strings.Join(names, ", ")
}

// SubscriptionShowOpts are the options of "rawevents subscriptions show",
// which prints one subscription's partitions.
type SubscriptionShowOpts struct {
	GlobalOpts
	// Name is the subscription's name.
	Name string
	// Now is the clock that tells live leases from lapsed ones; nil means
	// time.Now.
	Now func() time.Time
}

func newSubscriptionShowCommand(globals *GlobalOpts) *cobra.Command {
	opts := &SubscriptionShowOpts{}
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Print a subscription's partitions: checkpoint, lag and lease of each",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.GlobalOpts = *globals
			opts.Name = args[0]
			return run(cmd, opts)
		},
	}
}

// Validate checks the flags, reporting every problem at once.
func (o *SubscriptionShowOpts) Validate() error {
	errs := []error{o.GlobalOpts.validate()}
	if o.Name == "" {
		errs = append(errs, errors.New("subscription name is empty"))
	}
	return errors.Join(errs...)
}

// Run prints a summary line and a table of partitions, or with --json the
// status as one object.
func (o *SubscriptionShowOpts) Run(ctx context.Context, out io.Writer) error {
	store, err := openStoreForRead(ctx, o.Store)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // nothing was written
	st, err := store.SubscriptionStatus(ctx, o.Name)
	if err != nil {
		return notFoundSubscription(o.Name, err)
	}
	if o.JSON {
		return printJSON(out, st)
	}
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	fmt.Fprintf(out, "%s: %s, position %d, head %d, lag %d, parked %d\n", st.Name, st.State, st.Position, st.Head, st.Lag, st.Parked)
	tw := newTable(out)
	fmt.Fprintln(tw, "PARTITION\tPOSITION\tLAG\tOWNER\tLEASE UNTIL\tUPDATED")
	for _, p := range st.Partitions {
		owner, lease := "-", timeOrDash(p.LeaseUntil)
		if p.Owner != "" {
			owner = p.Owner
		}
		if !p.LeaseUntil.IsZero() && !p.LeaseUntil.After(now) {
			lease += " (lapsed)"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\n", p.Partition, p.Position, max(st.Head-p.Position, 0), owner, lease, timeOrDash(p.UpdatedAt))
	}
	return tw.Flush()
}
