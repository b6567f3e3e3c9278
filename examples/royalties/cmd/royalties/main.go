// Command royalties is the rawevents binary with the royalties application
// in it: "royalties serve" runs its processor and read models, and every
// other rawevents command works as in rawevents ("royalties projections
// rebuild earnings", say).
package main

import (
	"os"

	"github.com/rawevents/rawevents/examples/royalties/app"
	"github.com/rawevents/rawevents/internal/cli"
)

func main() {
	os.Exit(cli.MainApp(os.Args[1:], app.New()))
}
