package cli

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents"
)

// ReadOpts are the options of "rawevents read", which prints a stream's
// events.
type ReadOpts struct {
	GlobalOpts
	// Stream is the id of the stream to read.
	Stream string
	// From is the first version to print. Forwards 0 means 1; backwards 0
	// means the last version.
	From int64
	// Backwards prints from From down to version 1.
	Backwards bool
	// Limit is how many events to print at most; 0 prints them all.
	Limit int
}

func newReadCommand(globals *GlobalOpts) *cobra.Command {
	opts := &ReadOpts{}
	cmd := &cobra.Command{
		Use:   "read STREAM_ID",
		Short: "Print a stream's events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.GlobalOpts = *globals
			opts.Stream = args[0]
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&opts.From, "from", 0, "first version to print (default: the first, or the last with --backwards)")
	f.BoolVar(&opts.Backwards, "backwards", false, "print newest first")
	f.IntVar(&opts.Limit, "limit", 0, "print at most this many events (default: all)")
	return cmd
}

// Validate checks the flags, reporting every problem at once.
func (o *ReadOpts) Validate() error {
	errs := []error{o.GlobalOpts.validate()}
	if o.Stream == "" {
		errs = append(errs, errors.New("stream id is empty"))
	}
	if o.From < 0 {
		errs = append(errs, errors.New("--from must not be negative"))
	}
	if o.Limit < 0 {
		errs = append(errs, errors.New("--limit must not be negative"))
	}
	return errors.Join(errs...)
}

// Run prints the events, one page of the store's default size at a time. A
// stream without events prints nothing.
func (o *ReadOpts) Run(ctx context.Context, out io.Writer) error {
	store, _, err := openStore(ctx, o.Store, false)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // nothing was written
	from, left := o.From, o.Limit
	for {
		size := rawevents.DefaultPageSize
		if o.Limit > 0 && left < size {
			size = left
		}
		page, err := store.ReadStream(ctx, o.Stream, &rawevents.ReadStreamOpts{From: from, Backwards: o.Backwards, Limit: size})
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := printEvent(out, e, o.JSON, false); err != nil {
				return err
			}
		}
		left -= len(page)
		last := int64(0)
		if len(page) > 0 {
			last = page[len(page)-1].StreamVersion
		}
		// A short page is the end of the stream. Backwards, From 0 would
		// mean "from the end" again, so stop after version 1.
		if len(page) < size || (o.Limit > 0 && left == 0) || (o.Backwards && last <= 1) {
			return nil
		}
		if o.Backwards {
			from = last - 1
		} else {
			from = last + 1
		}
	}
}
