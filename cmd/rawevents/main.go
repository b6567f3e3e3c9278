// Command rawevents runs, feeds and inspects a rawevents event store. See
// "rawevents --help"; the commands live in internal/cli. "rawevents demo"
// runs the royalties example application (examples/royalties).
package main

import (
	"os"

	"github.com/rawevents/rawevents/examples/royalties/demo"
	"github.com/rawevents/rawevents/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], demo.Command()))
}
