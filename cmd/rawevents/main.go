// Command rawevents runs, feeds and inspects a rawevents event store. See
// "rawevents --help"; the commands live in internal/cli.
package main

import (
	"os"

	"github.com/rawevents/rawevents/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
