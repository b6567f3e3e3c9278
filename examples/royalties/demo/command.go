package demo

import (
	"errors"
	"os"

	"github.com/spf13/cobra"
)

// Command returns the "demo" command.
func Command() *cobra.Command {
	cfg := Config{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the royalties application end to end on a simulated streaming platform (embedded store, nothing to install)",
		Long: `Starts the server with the royalties application (processor, read models, query API),
starts a simulated streaming platform, backfills its history from its API with a
progress bar, then receives its live usage by signed webhooks, and prints what to
try. Ctrl-C stops it; run again, it carries on where it stopped. Everything lives
in --dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Months < 0 || cfg.Tracks < 0 {
				return errors.New("--months and --tracks must not be negative")
			}
			if f, ok := cmd.ErrOrStderr().(*os.File); ok {
				if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
					cfg.Progress = f
				}
			}
			return Run(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", ".rawevents-demo", "where the demo keeps its store, read models, config and log")
	f.BoolVar(&cfg.Fresh, "fresh", false, "start over: delete what an earlier run left in --dir")
	f.Uint64Var(&cfg.Seed, "seed", 0, "the simulated platform's seed (default 1)")
	f.IntVar(&cfg.Months, "months", 0, "months of history (default 12)")
	f.IntVar(&cfg.Tracks, "tracks", 0, "tracks in the catalog (default 200)")
	f.Float64Var(&cfg.Rate, "rate", 20, "live usage reports per second (0: as fast as the server takes them)")
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "where the API listens")
	f.StringVar(&cfg.Store, "store", "", "event store: default royalties.db in --dir; a postgres:// URL runs the demo on PostgreSQL")
	return cmd
}
