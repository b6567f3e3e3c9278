package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the command line args (without the program name) as the
// rawevents binary does: SIGINT and SIGTERM cancel the command's context,
// so that a server shuts down gracefully, and an error is printed as one
// line on stderr. It returns the exit code. Extra commands join the
// built-in ones.
func Main(args []string, extra ...*cobra.Command) int {
	return MainApp(args, nil, extra...)
}

// MainApp is Main for a binary built with an application (see App).
func MainApp(args []string, app *App, extra ...*cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewAppCommand(app)
	root.AddCommand(extra...)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "rawevents: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
	return 0
}
