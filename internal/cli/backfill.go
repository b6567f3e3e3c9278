package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/ingest"
)

// BackfillOpts are the options of "rawevents backfill NAME", which runs a
// backfill in the foreground: it pulls a source's API, page by page, into
// the raw log, from where the last run of that backfill stopped.
type BackfillOpts struct {
	GlobalOpts
	// Name is the backfill: an entry of the config file's "backfills", or
	// one of App.Backfills.
	Name string
	// ConfigFile is the JSON config file of "rawevents serve" (see
	// FileConfig).
	ConfigFile string
	// Rate, when positive, replaces the backfill's rate, in pages per
	// second.
	Rate float64
	// Restart pulls everything again from the first page.
	Restart bool
	// Actor is recorded with the progress: who ran it.
	Actor string
	// App holds the backfills an application registers in Go.
	App *App
	// Progress receives a progress bar; nil shows none. The command sets
	// it to stderr when stderr is a terminal and --json is not set.
	Progress io.Writer

	backfill *backfill.Backfill // set by Validate
}

// BackfillSummary is what "rawevents backfill" prints at the end (as one
// JSON object with --json): the backfill's progress, and what this run
// did.
type BackfillSummary struct {
	backfill.Progress
	// Run counts what this run pulled; the Progress counts every run of
	// the pass.
	Run BackfillRunCounts `json:"run"`
}

// BackfillRunCounts are the counts of one run.
type BackfillRunCounts struct {
	// Pages counts the pages this run stored.
	Pages int64 `json:"pages"`
	// Items counts the items this run pulled: Stored plus Duplicates.
	Items int64 `json:"items"`
	// Stored counts the items this run stored as new raw events.
	Stored int64 `json:"stored"`
	// Duplicates counts the items this run found in the log already.
	Duplicates int64 `json:"duplicates"`
}

func newBackfillCommand(globals *GlobalOpts, getenv func(string) string) *cobra.Command {
	opts := &BackfillOpts{}
	cmd := &cobra.Command{
		Use:   "backfill NAME",
		Short: "Pull a source's API into the raw log, resuming where the last run stopped",
		Long: `Run the backfill NAME, configured under "backfills" in the config file of
"rawevents serve" (--config), in the foreground: pull the source's API page
by page and store each item as a raw event under the backfill's CloudEvents
source, saving the cursor after each page. Items already stored (delivered
by a webhook, or pulled before) count as duplicates and store nothing.

Stopped by Ctrl-C or a crash, the next run resumes at the saved cursor. A
completed backfill is not pulled again unless --restart. Progress is kept
in the stream rawevents:backfill:NAME and served at GET /v1/backfills.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.GlobalOpts = *globals
			opts.Name = args[0]
			opts.App = globals.app
			if !cmd.Flags().Changed("config") {
				opts.ConfigFile = getenv("RAWEVENTS_CONFIG")
			}
			if !cmd.Root().PersistentFlags().Changed("store") && getenv("RAWEVENTS_STORE") == "" {
				opts.Store = "" // let the config file name it
			}
			if !opts.JSON && isTerminal(cmd.ErrOrStderr()) {
				opts.Progress = cmd.ErrOrStderr()
			}
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ConfigFile, "config", "", "JSON config file of rawevents serve, with the backfill under \"backfills\" (env RAWEVENTS_CONFIG)")
	f.Float64Var(&opts.Rate, "rate", 0, "pages per second at most (default: the backfill's rate, or no limit)")
	f.BoolVar(&opts.Restart, "restart", false, "pull everything again from the first page; stored items count as duplicates")
	f.StringVar(&opts.Actor, "actor", getenv("USER"), "who runs it, recorded with the progress (default $USER)")
	return cmd
}

// Validate reads the config file and finds the backfill, reporting every
// problem at once. Nothing is opened when it fails.
func (o *BackfillOpts) Validate() error {
	var errs []error
	if err := backfill.ValidateName(o.Name); err != nil {
		return err
	}
	if o.Rate < 0 {
		errs = append(errs, errors.New("--rate must not be negative"))
	}
	var file FileConfig
	if o.ConfigFile != "" {
		var err error
		if file, err = readFileConfig(o.ConfigFile); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	o.Store = cmp.Or(o.Store, file.Store, "rawevents.db")

	var fromApp *backfill.Backfill
	if o.App != nil {
		for _, b := range o.App.Backfills {
			if b != nil && b.Name == o.Name {
				fromApp = b
			}
		}
	}
	hc, inFile := file.Backfills[o.Name]
	switch {
	case inFile && fromApp != nil:
		errs = append(errs, fmt.Errorf("backfill %q is both in %s and in the application: rename one", o.Name, o.ConfigFile))
	case fromApp != nil:
		o.backfill = fromApp
	case inFile:
		b, err := fileBackfill(file, o.Name, hc)
		if err != nil {
			errs = append(errs, err)
		}
		o.backfill = b
	default:
		errs = append(errs, o.unknown(file))
	}
	return errors.Join(errs...)
}

// fileBackfill builds the backfill name of the config file from its
// settings hc. Its source attribute defaults to that of the webhook source
// of the same name: the events of a source's webhooks and its backfill
// must carry the same source attribute to be deduplicated.
func fileBackfill(file FileConfig, name string, hc backfill.HTTPConfig) (*backfill.Backfill, error) {
	if hc.Source == "" {
		if w, ok := file.Sources[name]; ok {
			hc.Source = cmp.Or(w.Source, name)
		}
	}
	return hc.Backfill(name, nil)
}

// allBackfills are the backfills of the config file and of the
// application, in name order; a name in both is an error.
func allBackfills(app *App, file FileConfig) ([]*backfill.Backfill, error) {
	var out []*backfill.Backfill
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(file.Backfills)) {
		b, err := fileBackfill(file, name, file.Backfills[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, b)
	}
	if app != nil {
		for _, b := range app.Backfills {
			if b == nil {
				continue
			}
			if _, ok := file.Backfills[b.Name]; ok {
				errs = append(errs, fmt.Errorf("backfill %q is both in the config file and in the application: rename one", b.Name))
				continue
			}
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b *backfill.Backfill) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}

// unknown explains that the backfill is not configured.
func (o *BackfillOpts) unknown(file FileConfig) error {
	var known []string
	known = slices.AppendSeq(known, maps.Keys(file.Backfills))
	if o.App != nil {
		for _, b := range o.App.Backfills {
			if b != nil {
				known = append(known, b.Name)
			}
		}
	}
	slices.Sort(known)
	switch {
	case len(known) > 0:
		return fmt.Errorf("no backfill %q (configured: %s)", o.Name, strings.Join(known, ", "))
	case o.ConfigFile == "":
		return fmt.Errorf("no backfill %q: configure it under \"backfills\" in a config file and pass --config FILE", o.Name)
	}
	return fmt.Errorf("no backfill %q: %s has no \"backfills\"", o.Name, o.ConfigFile)
}

// readFileConfig reads the config file of "rawevents serve".
func readFileConfig(path string) (FileConfig, error) {
	var file FileConfig
	raw, err := os.ReadFile(path)
	if err != nil {
		return file, fmt.Errorf("--config: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return file, fmt.Errorf("--config %s: %w", path, err)
	}
	return file, nil
}

// Run runs the backfill until its last page is stored, ctx ends (Ctrl-C)
// or it fails, then prints the summary. It returns an error, after the
// summary, when the backfill did not complete.
func (o *BackfillOpts) Run(ctx context.Context, out io.Writer) error {
	store, _, err := openStore(ctx, o.Store, true)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // closing after the ingester committed
	in := ingest.New(store, &ingest.Config{Committers: 1})
	defer in.Close()
	runner, err := backfill.NewRunner(&backfill.Config{Store: store, Ingester: in, Backfills: []*backfill.Backfill{o.backfill}})
	if err != nil {
		return err
	}

	var first, last backfill.Progress
	started := false
	var bar *progressbar.ProgressBar
	p, runErr := runner.Run(ctx, o.Name, &backfill.RunOpts{
		Restart: o.Restart, Rate: o.Rate, Actor: o.Actor,
		OnProgress: func(p backfill.Progress) {
			if !started { // the run started
				started, first = true, p
				if !o.JSON && p.Items > 0 {
					fmt.Fprintf(out, "backfill %s: resuming after %d items (%d pages)\n", o.Name, p.Items, p.Pages)
				}
			}
			last = p
			bar = o.showProgress(bar, p)
		},
	})
	if bar != nil {
		bar.Finish() //nolint:errcheck,gosec // clears the bar; nothing to do if that fails
	}
	in.Close() // commit what was queued before the store closes
	if errors.Is(runErr, backfill.ErrCompleted) {
		return o.printCompleted(out, p)
	}
	if p == nil {
		return runErr
	}
	sum := BackfillSummary{Progress: *p, Run: BackfillRunCounts{
		Pages: last.Pages - first.Pages, Items: last.Items - first.Items,
		Stored: last.Stored - first.Stored, Duplicates: last.Duplicates - first.Duplicates,
	}}
	if err := o.printSummary(out, sum, runErr != nil); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

// showProgress draws p on the progress bar, making it on the first call.
func (o *BackfillOpts) showProgress(bar *progressbar.ProgressBar, p backfill.Progress) *progressbar.ProgressBar {
	if o.Progress == nil {
		return nil
	}
	if bar == nil {
		total := int64(-1) // a spinner until the source says its total
		if p.Total > 0 {
			total = p.Total
		}
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(o.Progress),
			progressbar.OptionSetDescription("backfill "+o.Name),
			progressbar.OptionSetItsString("items"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	if p.Total > 0 && bar.GetMax64() != p.Total {
		bar.ChangeMax64(p.Total)
	}
	bar.Set64(p.Items) //nolint:errcheck,gosec // a progress bar that cannot draw changes nothing
	return bar
}

func (o *BackfillOpts) printCompleted(out io.Writer, p *backfill.Progress) error {
	if o.JSON {
		return writeJSON(out, BackfillSummary{Progress: *p})
	}
	completed := ""
	if p.CompletedAt != nil {
		completed = " at " + p.CompletedAt.Format(time.RFC3339)
	}
	_, err := fmt.Fprintf(out, "backfill %s is complete%s: %d items, stored %d, duplicates %d; --restart pulls everything again\n",
		o.Name, completed, p.Items, p.Stored, p.Duplicates)
	return err
}

func (o *BackfillOpts) printSummary(out io.Writer, sum BackfillSummary, failed bool) error {
	if o.JSON {
		return writeJSON(out, sum)
	}
	var b strings.Builder
	switch {
	case sum.State == backfill.StateCompleted:
		fmt.Fprintf(&b, "backfill %s completed: ", o.Name)
	case failed:
		fmt.Fprintf(&b, "backfill %s stopped (run the same command to resume): ", o.Name)
	default:
		fmt.Fprintf(&b, "backfill %s in progress: ", o.Name)
	}
	fmt.Fprintf(&b, "stored %d, duplicates %d in %d pages this run", sum.Run.Stored, sum.Run.Duplicates, sum.Run.Pages)
	if sum.Runs > 1 {
		fmt.Fprintf(&b, "; %d items in %d runs in all", sum.Items, sum.Runs)
	}
	if sum.Position > 0 {
		fmt.Fprintf(&b, "; log position %d", sum.Position)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(out, b.String())
	return err
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
