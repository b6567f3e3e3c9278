package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/postgres"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/internal/server"
	"github.com/rawevents/rawevents/projection"
)

// readModels is a projection.Projector with its transaction type hidden.
type readModels interface {
	server.ReadModels
	Run(ctx context.Context) error
	StartRebuild(ctx context.Context, name string, swap bool) (int, error)
	Swap(ctx context.Context, name string) error
	CancelRebuild(ctx context.Context, name string) error
	Compare(ctx context.Context, name string) (*projection.Diff, error)
	DropRetired(ctx context.Context, name string) (int, error)
}

// readStoreFor returns where the read models of the store at dsn live
// when --read-store does not say: beside an SQLite file, in a second
// file (NAME.read.db for NAME.db), so that projections do not wait for
// the log's single writer; in the same database on PostgreSQL.
func readStoreFor(dsn string) string {
	if isPostgres(dsn) {
		return dsn
	}
	return strings.TrimSuffix(dsn, ".db") + ".read.db"
}

// openReadModels opens the read-model store and a projector of the app's
// projections on store. local gives the positions of the app's
// subscriptions that this process runs; the others are read from their
// checkpoints. It returns the read-model store too when it is not store
// (the projections' subscriptions keep their state there), and a function
// that closes what was opened.
func openReadModels(ctx context.Context, store Store, dsn, readDSN string, app *App, local map[string]projection.Positioner) (readModels, server.SubscriptionStore, func() error, error) {
	if app == nil || len(app.Projections) == 0 {
		return nil, nil, nil, errors.New("no application with projections is registered in this binary")
	}
	if readDSN == "" {
		readDSN = readStoreFor(dsn)
	}
	switch log := store.(type) {
	case *rawevents.Store[*sql.Tx]:
		if isPostgres(readDSN) {
			return nil, nil, nil, fmt.Errorf("--read-store %s: read models of an SQLite store live in SQLite", Redact(readDSN))
		}
		d, err := sqlite.Open(readDSN, nil)
		if err != nil {
			return nil, nil, nil, err
		}
		read, _, err := migrateAndOpen(ctx, d, func(context.Context) error { return nil })
		if err != nil {
			return nil, nil, nil, err
		}
		p, err := newProjector(ctx, log, read.(*rawevents.Store[*sql.Tx]), app, app.SQLite, local)
		if err != nil {
			read.Close()
			return nil, nil, nil, err
		}
		return p, read, read.Close, nil
	case *rawevents.Store[pgx.Tx]:
		if !isPostgres(readDSN) {
			return nil, nil, nil, fmt.Errorf("--read-store %s: read models of a PostgreSQL store live in PostgreSQL", readDSN)
		}
		read, closeRead := log, func() error { return nil }
		var state server.SubscriptionStore
		if readDSN != dsn {
			d, err := postgres.Open(ctx, readDSN, nil)
			if err != nil {
				return nil, nil, nil, err
			}
			s, _, err := migrateAndOpen(ctx, d, func(context.Context) error { return nil })
			if err != nil {
				return nil, nil, nil, err
			}
			read, closeRead = s.(*rawevents.Store[pgx.Tx]), s.Close
			state = read
		}
		p, err := newProjector(ctx, log, read, app, app.Postgres, local)
		if err != nil {
			closeRead()
			return nil, nil, nil, err
		}
		return p, state, closeRead, nil
	}
	return nil, nil, nil, fmt.Errorf("projections: no backend for %T", store)
}

// Redact hides the credentials of a store URL, for messages.
func Redact(dsn string) string {
	if i, j := strings.Index(dsn, "://"), strings.LastIndex(dsn, "@"); i >= 0 && j > i {
		return dsn[:i+3] + "…" + dsn[j:]
	}
	return dsn
}

// newProjector builds the projector of app's projections, with the app's
// subscriptions (its processors) as the upstream stage that wait_for
// waits for.
func newProjector[TTx any](ctx context.Context, log, read *rawevents.Store[TTx], app *App,
	setup func(context.Context, *rawevents.Store[TTx]) ([]*rawevents.Subscription[TTx], error), local map[string]projection.Positioner,
) (*projection.Projector[TTx], error) {
	var upstream []projection.Positioner
	if setup != nil {
		subs, err := setup(ctx, log)
		if err != nil {
			return nil, fmt.Errorf("projections: %w", err)
		}
		for _, sub := range subs {
			if p, ok := local[sub.Name]; ok {
				upstream = append(upstream, p)
			} else {
				upstream = append(upstream, rawevents.StoredProgress[TTx]{Store: log, Name: sub.Name})
			}
		}
	}
	return projection.New(log, read, &projection.Options{Upstream: upstream, AutoRebuild: app.AutoRebuild, BulkIndexFrom: app.BulkIndexFrom}, app.Projections...)
}

// ProjectionsOpts are the options of "rawevents projections", which lists
// the application's projections with how far each is.
type ProjectionsOpts struct {
	GlobalOpts
}

func newProjectionsCommand(globals *GlobalOpts) *cobra.Command {
	opts := &ProjectionsOpts{}
	cmd := &cobra.Command{
		Use:     "projections",
		Aliases: []string{"projection"},
		Short:   "List projections: position, lag, state, parked events, versions, rebuilds",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.GlobalOpts = *globals
			return run(cmd, opts)
		},
	}
	cmd.AddCommand(newRebuildCommand(globals), newDropRetiredCommand(globals))
	return cmd
}

// Validate checks the flags.
func (o *ProjectionsOpts) Validate() error { return o.GlobalOpts.validate() }

// withReadModels opens the store and the read models for a command.
func (g *GlobalOpts) withReadModels(ctx context.Context, fn func(rm readModels) error) error {
	store, err := openStoreForRead(ctx, g.Store)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // read-mostly
	rm, _, closeRead, err := openReadModels(ctx, store, g.Store, g.ReadStore, g.app, nil)
	if err != nil {
		return err
	}
	defer closeRead() //nolint:errcheck // read-mostly
	return fn(rm)
}

// Run prints one line per projection.
func (o *ProjectionsOpts) Run(ctx context.Context, out io.Writer) error {
	return o.withReadModels(ctx, func(rm readModels) error {
		tw := newTable(out)
		if !o.JSON {
			fmt.Fprintln(tw, "NAME\tSTATE\tPOSITION\tHEAD\tLAG\tLAG(S)\tPARKED\tVERSION\tBUILT\tREBUILD")
		}
		for _, name := range rm.Names() {
			st, err := rm.Status(ctx, name)
			if err != nil {
				return err
			}
			if o.JSON {
				if err := printJSON(out, st); err != nil {
					return err
				}
				continue
			}
			rebuild := "-"
			if st.Rebuild != nil {
				rebuild = fmt.Sprintf("v%d %.0f%%", st.Rebuild.Version, 100*st.Rebuild.Progress)
			}
			state := st.State
			if st.Error != "" {
				state += ": " + st.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%s\n", st.Name, state, st.Position, st.Head, st.Lag, st.LagSeconds,
				st.Parked, st.Version, st.BuiltVersion, rebuild)
		}
		return tw.Flush()
	})
}

// RebuildOpts are the options of "rawevents projections rebuild NAME".
type RebuildOpts struct {
	GlobalOpts
	Name string
	// Preview compares the rebuilt read model with the live one and
	// drops it instead of swapping it in.
	Preview bool
	// Progress receives a progress bar; nil shows none.
	Progress io.Writer
	// Timeout bounds the whole rebuild; 0 means none.
	Timeout time.Duration
}

func newRebuildCommand(globals *GlobalOpts) *cobra.Command {
	opts := &RebuildOpts{}
	cmd := &cobra.Command{
		Use:   "rebuild NAME",
		Short: "Rebuild a projection from position 0 beside the live one, then swap it in (or --preview the difference)",
		Long: `Builds the projection's read model again, from the first event, into tables
of their own while the live read model keeps serving. When the rebuild has
caught up it replaces the live one in one step; the old tables are kept until
"rawevents projections drop-retired NAME". With --preview it prints what
differs from the live read model and drops the rebuilt one instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.GlobalOpts, opts.Name = *globals, args[0]
			if !opts.JSON && isTerminal(cmd.ErrOrStderr()) {
				opts.Progress = cmd.ErrOrStderr()
			}
			return run(cmd, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Preview, "preview", false, "compare with the live read model and drop the rebuild instead of swapping it in")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 0, "give up after this long (0: no limit)")
	return cmd
}

// Validate checks the flags.
func (o *RebuildOpts) Validate() error {
	if o.Timeout < 0 {
		return errors.New("--timeout must not be negative")
	}
	return o.GlobalOpts.validate()
}

// Run starts the rebuild, works on it in this process (beside any server
// that runs the projection), waits until it has caught up, and swaps it
// in or prints the preview.
func (o *RebuildOpts) Run(ctx context.Context, out io.Writer) error {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	return o.withReadModels(ctx, func(rm readModels) error {
		if _, err := rm.Projection(o.Name); err != nil {
			return fmt.Errorf("%w (see rawevents projections)", err)
		}
		gen, err := rm.StartRebuild(ctx, o.Name, false)
		if err != nil {
			return err
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- rm.Run(runCtx) }()
		defer func() { stop(); <-done }()
		if err := o.waitCaughtUp(ctx, rm); err != nil {
			cancelCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return errors.Join(err, rm.CancelRebuild(cancelCtx, o.Name))
		}
		if o.Preview {
			diff, err := rm.Compare(ctx, o.Name)
			if err != nil {
				return err
			}
			if err := o.printDiff(out, diff); err != nil {
				return err
			}
			return rm.CancelRebuild(ctx, o.Name)
		}
		if err := rm.Swap(ctx, o.Name); err != nil {
			return err
		}
		if o.JSON {
			return printJSON(out, map[string]any{"projection": o.Name, "generation": gen, "swapped": true})
		}
		_, err = fmt.Fprintf(out, "%s rebuilt (generation %d) and swapped in; the previous tables are kept: rawevents projections drop-retired %s\n", o.Name, gen, o.Name)
		return err
	})
}

// waitCaughtUp waits until the rebuild has applied the whole log as it
// was when the wait began, drawing progress.
func (o *RebuildOpts) waitCaughtUp(ctx context.Context, rm readModels) error {
	var bar *progressbar.ProgressBar
	for {
		st, err := rm.Status(ctx, o.Name)
		if err != nil {
			return err
		}
		if st.Rebuild == nil {
			return errors.New("the rebuild was cancelled or swapped in by another process")
		}
		if o.Progress != nil && bar == nil {
			bar = progressbar.NewOptions64(st.Head,
				progressbar.OptionSetWriter(o.Progress), progressbar.OptionSetDescription("rebuild "+o.Name),
				progressbar.OptionSetItsString("events"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(), progressbar.OptionFullWidth())
		}
		if bar != nil {
			bar.ChangeMax64(st.Head)
			bar.Set64(st.Rebuild.Position) //nolint:errcheck,gosec // drawing only
		}
		if st.Rebuild.Position >= st.Head {
			if bar != nil {
				bar.Finish() //nolint:errcheck,gosec // drawing only
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rebuild of %s: %w", o.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (o *RebuildOpts) printDiff(out io.Writer, diff *projection.Diff) error {
	if o.JSON {
		return printJSON(out, diff)
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "TABLE\tADDED\tREMOVED\tCHANGED\tSAME")
	for _, t := range diff.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", t.Table, t.Added, t.Removed, t.Changed, t.Same)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range diff.Tables {
		for _, e := range t.Examples {
			kind := "changed"
			switch {
			case e.Old == nil:
				kind = "added"
			case e.New == nil:
				kind = "removed"
			}
			fmt.Fprintf(out, "  %s %s %v\n", t.Table, kind, e.Key)
			if e.Old != nil {
				fmt.Fprintf(out, "    live:    %s\n", rowString(e.Old))
			}
			if e.New != nil {
				fmt.Fprintf(out, "    rebuilt: %s\n", rowString(e.New))
			}
		}
	}
	_, err := fmt.Fprintln(out, "preview only: the rebuild was dropped; run without --preview to swap it in")
	return err
}

func rowString(r projection.Row) string {
	var b strings.Builder
	if err := printJSON(&b, r); err != nil {
		return fmt.Sprint(r)
	}
	return strings.TrimSpace(b.String())
}

// DropRetiredOpts are the options of "rawevents projections drop-retired".
type DropRetiredOpts struct {
	GlobalOpts
	Name string
}

func newDropRetiredCommand(globals *GlobalOpts) *cobra.Command {
	opts := &DropRetiredOpts{}
	return &cobra.Command{
		Use:   "drop-retired NAME",
		Short: "Drop the tables of the read models a rebuild replaced",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.GlobalOpts, opts.Name = *globals, args[0]
			return run(cmd, opts)
		},
	}
}

// Validate checks the flags.
func (o *DropRetiredOpts) Validate() error { return o.GlobalOpts.validate() }

// Run drops the retired generations.
func (o *DropRetiredOpts) Run(ctx context.Context, out io.Writer) error {
	return o.withReadModels(ctx, func(rm readModels) error {
		n, err := rm.DropRetired(ctx, o.Name)
		if err != nil {
			return err
		}
		if o.JSON {
			return printJSON(out, map[string]any{"projection": o.Name, "dropped": n})
		}
		_, err = fmt.Fprintf(out, "%s: dropped %d retired read model(s)\n", o.Name, n)
		return err
	})
}
