package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
)

func newSnapshotsCommand(globals *GlobalOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List or prune aggregate snapshots",
		Long: "Snapshots are a cache of a stream's state at a version. They are never the truth: an aggregate\n" +
			"without a usable snapshot replays its stream, so pruning only costs time on the next load.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSnapshotsListCommand(globals), newSnapshotsPruneCommand(globals))
	return cmd
}

// SnapshotsListOpts are the options of "rawevents snapshots list", which
// lists snapshots by stream and version, without their data.
type SnapshotsListOpts struct {
	GlobalOpts
	// Prefix keeps the streams whose id starts with it.
	Prefix string
	// Limit is how many snapshots to print at most; 0 prints them all.
	Limit int
}

func newSnapshotsListCommand(globals *GlobalOpts) *cobra.Command {
	opts := &SnapshotsListOpts{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List snapshots: stream, version, schema version, size, when taken",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.GlobalOpts = *globals
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Prefix, "prefix", "", "list the streams whose id starts with this")
	f.IntVar(&opts.Limit, "limit", 0, "print at most this many snapshots (default: all)")
	return cmd
}

// Validate checks the flags, reporting every problem at once.
func (o *SnapshotsListOpts) Validate() error {
	errs := []error{o.GlobalOpts.validate()}
	if o.Limit < 0 {
		errs = append(errs, errors.New("--limit must not be negative"))
	}
	return errors.Join(errs...)
}

// Run prints the snapshots a page at a time: a table, or with --json one
// object per line. No snapshots print nothing.
func (o *SnapshotsListOpts) Run(ctx context.Context, out io.Writer) error {
	store, err := openStoreForRead(ctx, o.Store)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // nothing was written
	tw := newTable(out)
	params := &driver.ListSnapshotsParams{StreamPrefix: o.Prefix}
	left, header := o.Limit, false
	for {
		params.Limit = rawevents.DefaultPageSize
		if o.Limit > 0 && left < params.Limit {
			params.Limit = left
		}
		page, err := store.ListSnapshots(ctx, params)
		if err != nil {
			return err
		}
		for _, s := range page {
			if o.JSON {
				if err := printJSON(out, s); err != nil {
					return err
				}
				continue
			}
			if !header {
				fmt.Fprintln(tw, "STREAM\tVERSION\tSCHEMA\tBYTES\tCREATED")
				header = true
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", s.StreamID, s.Version, s.SchemaVersion, s.Size, timeOrDash(s.CreatedAt))
		}
		left -= len(page)
		if len(page) < params.Limit || (o.Limit > 0 && left == 0) {
			return tw.Flush()
		}
		last := page[len(page)-1]
		params.AfterStream, params.AfterVersion = last.StreamID, last.Version
	}
}

// SnapshotsPruneOpts are the options of "rawevents snapshots prune", which
// deletes all but the newest snapshots of each stream.
type SnapshotsPruneOpts struct {
	GlobalOpts
	// Keep is how many of each stream's newest snapshots stay; required,
	// and 0 deletes them all. The flag's default, -1, means it was not
	// given.
	Keep int
	// Prefix limits the pruning to the streams whose id starts with it.
	Prefix string
}

func newSnapshotsPruneCommand(globals *GlobalOpts) *cobra.Command {
	opts := &SnapshotsPruneOpts{}
	cmd := &cobra.Command{
		Use:   "prune --keep N [--prefix P]",
		Short: "Delete all but the newest N snapshots of each stream",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.GlobalOpts = *globals
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Keep, "keep", -1, "how many of each stream's newest snapshots to keep (required; 0 deletes all)")
	f.StringVar(&opts.Prefix, "prefix", "", "prune only the streams whose id starts with this")
	return cmd
}

// Validate checks the flags, reporting every problem at once.
func (o *SnapshotsPruneOpts) Validate() error {
	errs := []error{o.GlobalOpts.validate()}
	if o.Keep < 0 {
		errs = append(errs, errors.New("--keep is required and must not be negative (0 deletes every snapshot)"))
	}
	return errors.Join(errs...)
}

// PruneOutput is what "snapshots prune --json" prints.
type PruneOutput struct {
	// Deleted is how many snapshots were deleted.
	Deleted int64 `json:"deleted"`
}

// Run prunes and prints how many snapshots were deleted.
func (o *SnapshotsPruneOpts) Run(ctx context.Context, out io.Writer) error {
	store, err := openStoreForRead(ctx, o.Store)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // the deletion is committed or failed already
	n, err := store.PruneSnapshots(ctx, &driver.PruneSnapshotsParams{StreamPrefix: o.Prefix, Keep: o.Keep})
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(out, PruneOutput{Deleted: n})
	}
	_, err = fmt.Fprintf(out, "deleted %d snapshot(s), kept the newest %d of each stream\n", n, o.Keep)
	return err
}
