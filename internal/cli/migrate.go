package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// MigrateOpts are the options of "rawevents migrate", which brings the
// store's schema up to date.
type MigrateOpts struct {
	GlobalOpts
}

func newMigrateCommand(globals *GlobalOpts) *cobra.Command {
	opts := &MigrateOpts{}
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the schema migrations the store lacks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.GlobalOpts = *globals
			return run(cmd, opts)
		},
	}
}

// Validate checks the flags.
func (o *MigrateOpts) Validate() error { return o.GlobalOpts.validate() }

// Run migrates the store (every command does, on open) and prints the
// schema version and what was applied.
func (o *MigrateOpts) Run(ctx context.Context, out io.Writer) error {
	store, migrated, err := openStore(ctx, o.Store, true)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // the migration is committed already
	if o.JSON {
		return json.NewEncoder(out).Encode(migrated)
	}
	if len(migrated.Applied) == 0 {
		_, err = fmt.Fprintf(out, "schema at version %d (up to date)\n", migrated.Version)
		return err
	}
	applied := make([]string, len(migrated.Applied))
	for i, v := range migrated.Applied {
		applied[i] = strconv.Itoa(v)
	}
	_, err = fmt.Fprintf(out, "schema at version %d (applied: %s)\n", migrated.Version, strings.Join(applied, ", "))
	return err
}
