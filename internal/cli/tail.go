package cli

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents"
)

// TailOpts are the options of "rawevents tail", which prints the global log
// and, by default, keeps printing events as they are appended.
type TailOpts struct {
	GlobalOpts
	// From is the position to print after; 0 prints from the start.
	From int64
	// Follow keeps waiting for new events until the context ends.
	Follow bool
}

func newTailCommand(globals *GlobalOpts) *cobra.Command {
	opts := &TailOpts{}
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the global log and follow it as it grows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.GlobalOpts = *globals
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&opts.From, "from", 0, "print events after this position (default: from the start)")
	f.BoolVar(&opts.Follow, "follow", true, "wait for new events; --follow=false prints what is there and exits")
	return cmd
}

// Validate checks the flags, reporting every problem at once.
func (o *TailOpts) Validate() error {
	errs := []error{o.GlobalOpts.validate()}
	if o.From < 0 {
		errs = append(errs, errors.New("--from must not be negative"))
	}
	return errors.Join(errs...)
}

// Run prints the log. Following, it returns nil when ctx ends (Ctrl-C is
// how a user stops it, not a failure).
func (o *TailOpts) Run(ctx context.Context, out io.Writer) error {
	store, _, err := openStore(ctx, o.Store, false)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // nothing was written
	if !o.Follow {
		// Follow never says it has caught up, so page with ReadAll until a
		// short page instead.
		after := o.From
		for {
			page, err := store.ReadAll(ctx, &rawevents.ReadAllOpts{After: after})
			if err != nil {
				return err
			}
			for _, e := range page {
				if err := printEvent(out, e, o.JSON, true); err != nil {
					return err
				}
				after = e.Position
			}
			if len(page) < rawevents.DefaultPageSize {
				return nil
			}
		}
	}
	for e, err := range store.Follow(ctx, &rawevents.FollowOpts{After: o.From}) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := printEvent(out, e, o.JSON, true); err != nil {
			return err
		}
	}
	return nil
}
