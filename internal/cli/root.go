// Package cli implements the rawevents command line tool.
//
// Each command is an options struct with Validate, which checks the flags
// before anything is opened, and Run, which does the work and writes to an
// injected io.Writer. The cobra commands only bind flags to those structs,
// so tests drive the same code the binary runs.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents/event"
)

// GlobalOpts are the flags every command takes.
type GlobalOpts struct {
	// Store names the event store: a postgres:// URL or a SQLite file path.
	Store string
	// JSON selects machine-readable output: one JSON object per line.
	JSON bool
	// ReadStore names the read models' store; empty means beside Store
	// (see readStoreFor).
	ReadStore string

	app *App
}

func (g *GlobalOpts) validate() error {
	if g.Store == "" {
		return errors.New("--store is empty")
	}
	return nil
}

// command is what every subcommand's options implement.
type command interface {
	Validate() error
	Run(ctx context.Context, out io.Writer) error
}

// NewRootCommand returns the rawevents command with all its subcommands.
// Input and output are cobra's (SetIn, SetOut, SetErr; the process's
// standard streams by default). Errors are returned, never printed: the
// caller prints them.
func NewRootCommand() *cobra.Command {
	return NewAppCommand(nil)
}

// NewAppCommand is NewRootCommand for a binary built with an application:
// "serve" runs app's subscriptions in its worker role.
func NewAppCommand(app *App) *cobra.Command {
	return newAppCommand(os.Getenv, app)
}

func newRootCommand(getenv func(string) string) *cobra.Command {
	return newAppCommand(getenv, nil)
}

func newAppCommand(getenv func(string) string, app *App) *cobra.Command {
	globals := GlobalOpts{app: app}
	defaultStore := getenv("RAWEVENTS_STORE")
	if defaultStore == "" {
		defaultStore = "rawevents.db"
	}
	root := &cobra.Command{
		Use:           "rawevents",
		Short:         "Append to, read and follow a rawevents event store",
		SilenceUsage:  true,
		SilenceErrors: true,
		// SuggestionsFor reads this directly; cobra only defaults it when
		// it prints suggestions itself.
		SuggestionsMinimumDistance: 2,
		// Unknown commands are reported here, as one line, rather than by
		// cobra, whose message spans several lines.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %q?)", s[0])
			}
			return errors.New(msg)
		},
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see %s --help)", cmd.Name(), err, cmd.CommandPath())
	})
	root.PersistentFlags().StringVar(&globals.Store, "store", defaultStore,
		"event store: a postgres:// URL or a SQLite file path (env RAWEVENTS_STORE)")
	root.PersistentFlags().StringVar(&globals.ReadStore, "read-store", getenv("RAWEVENTS_READ_STORE"),
		"read models' store: a postgres:// URL or a SQLite file path (env RAWEVENTS_READ_STORE; default: FILE.read.db beside a SQLite store, the store's own database on PostgreSQL)")
	root.PersistentFlags().BoolVar(&globals.JSON, "json", false, "print one JSON object per line")
	root.AddCommand(
		newAppendCommand(&globals),
		newReadCommand(&globals),
		newTailCommand(&globals),
		newMigrateCommand(&globals),
		newServeCommand(&globals, getenv),
		newIngestCommand(&globals, getenv),
		newBenchCommand(&globals),
		newSubscriptionsCommand(&globals),
		newParkedCommand(&globals, getenv),
		newSnapshotsCommand(&globals),
		newProjectionsCommand(&globals),
		newBackfillCommand(&globals, getenv),
	)
	return root
}

// run validates c and then runs it with the command's context and output.
func run(cmd *cobra.Command, c command) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return c.Run(cmd.Context(), cmd.OutOrStdout())
}

// maxDataWidth is how many characters of an event's data a human-readable
// line shows.
const maxDataWidth = 120

// printEvent writes e as one line: JSON, or for humans its version,
// position, time, type and compacted data, prefixed by the stream id when
// withStream is set.
func printEvent(out io.Writer, e event.Event, asJSON, withStream bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		return enc.Encode(e)
	}
	var compact bytes.Buffer
	data := string(e.Data)
	if json.Compact(&compact, e.Data) == nil {
		data = compact.String()
	}
	if utf8.RuneCountInString(data) > maxDataWidth {
		data = string([]rune(data)[:maxDataWidth-1]) + "…"
	}
	prefix := ""
	if withStream {
		prefix = e.StreamID + "  "
	}
	_, err := fmt.Fprintf(out, "%sv%d  #%d  %s  %s  %s\n", prefix, e.StreamVersion, e.Position,
		e.OccurredAt.UTC().Format(time.RFC3339), e.Type, data)
	return err
}
