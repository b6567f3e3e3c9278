// Command platform simulates the streaming platforms the royalties
// application ingests: it generates a history and the current month's
// usage from a seed, serves the history as a paged API (GET /v1/history,
// GET /v1/info) and sends the live usage, signed, to a webhook.
//
//	go run ./examples/royalties/platform/cmd/platform --seed 1 --months 12 \
//	    --addr 127.0.0.1:9090 \
//	    --webhook http://127.0.0.1:8080/v1/sources/streamfy/webhook --secret S --rate 20
//
// Without --webhook it only serves the history. It serves until
// interrupted, or, with --exit, until the live items are sent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rawevents/rawevents/examples/royalties"
	"github.com/rawevents/rawevents/examples/royalties/platform"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command, exiting with 0 on success, 1 on failure and 2 on
// bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("platform", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg platform.Config
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the generated data")
	fs.IntVar(&cfg.Months, "months", platform.DefaultMonths, "months of history")
	fs.StringVar(&cfg.Start, "start", platform.DefaultStart, "first month of history, YYYY-MM")
	fs.IntVar(&cfg.Tracks, "tracks", platform.DefaultTracks, "tracks in the catalog")
	fs.IntVar(&cfg.Holders, "holders", platform.DefaultHolders, "rights holders")
	fs.IntVar(&cfg.Platforms, "platforms", platform.DefaultPlatforms, "streaming platforms")
	fs.IntVar(&cfg.Territories, "territories", platform.DefaultTerritories, "territories")
	addr := fs.String("addr", "127.0.0.1:9090", "address to serve the history API on")
	webhook := fs.String("webhook", "", "URL to send the live items to (none: only serve the history)")
	secret := fs.String("secret", "", "HMAC-SHA256 key of the webhook signatures")
	rate := fs.Float64("rate", 20, "webhooks a second (0: as fast as possible)")
	delay := fs.Duration("delay", 0, "wait before sending the live items")
	exit := fs.Bool("exit", false, "exit once the live items are sent")
	quiet := fs.Bool("quiet", false, "do not print each webhook")
	fs.Usage = func() {} // errors are one line; --help is below
	fail := func(code int, format string, args ...any) int {
		msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "; ")
		fmt.Fprintln(stderr, "platform: "+msg)
		return code
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: platform [flags]\n\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		return fail(2, "%v (see --help)", err)
	}
	send := platform.SendConfig{URL: *webhook, Secret: *secret, Rate: *rate}
	switch {
	case fs.NArg() > 0:
		return fail(2, "unexpected argument %q (see --help)", fs.Arg(0))
	case cfg.Months == 0 || cfg.Tracks == 0 || cfg.Holders == 0 || cfg.Platforms == 0 || cfg.Territories == 0:
		return fail(2, "--months, --tracks, --holders, --platforms and --territories must be at least 1")
	case *webhook == "" && *secret != "":
		return fail(2, "--secret needs --webhook")
	case *webhook == "" && *exit:
		return fail(2, "--exit needs --webhook")
	case *delay < 0:
		return fail(2, "--delay must not be negative")
	}
	if err := cfg.Validate(); err != nil {
		return fail(2, "%v", err)
	}
	if *webhook != "" {
		if err := send.Validate(); err != nil {
			return fail(2, "%s", strings.TrimPrefix(err.Error(), "platform: send: "))
		}
	}

	d := platform.Generate(cfg)
	h := platform.Counts(d.History())
	fmt.Fprintf(stdout, "platform: seed %d: history %s..%s, %d items (%d tracks, %d claims, %d rates, %d usage reports); %d live usage reports in %s\n",
		cfg.Seed, d.Months[0], d.Months[len(d.Months)-1], d.HistoryLen,
		h[royalties.TypeTrackRegistered], h[royalties.TypeShareClaimed], h[royalties.TypeRatePublished], h[royalties.TypeUsageReported],
		len(d.Live()), d.Current)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(1, "%v", err)
	}
	srv := &http.Server{Handler: platform.Handler(d), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(stdout, "platform: serving the history on http://%s/v1/history (and /v1/info)\n", ln.Addr())

	if *webhook != "" {
		if err := sleepCtx(ctx, *delay); err != nil {
			return fail(1, "interrupted before sending")
		}
		pace := "as fast as possible"
		if *rate > 0 {
			pace = fmt.Sprintf("at %g/s", *rate)
		}
		fmt.Fprintf(stdout, "platform: sending %d webhooks to %s %s (%d live, %d history items again)\n",
			len(d.Outbox), *webhook, pace, len(d.Live()), len(d.Anomalies.Resends))
		var last platform.Delivery
		send.OnDelivery = func(dl platform.Delivery) {
			last = dl
			if !*quiet {
				again := ""
				if dl.Resend {
					again = " (history, again)"
				}
				fmt.Fprintf(stdout, "platform: sent %d/%d %s %s%s: %d\n", dl.Seq, dl.Of, dl.ID, dl.Type, again, dl.Status)
			}
		}
		send.OnRetry = func(r platform.Retry) {
			fmt.Fprintf(stdout, "platform: %s try %d failed: %v; retrying in %v\n", r.ID, r.Attempt, r.Err, r.Wait)
		}
		if err := platform.Send(ctx, d, send); err != nil {
			if ctx.Err() != nil {
				return fail(1, "interrupted after sending %d of %d webhooks", last.Delivered, len(d.Outbox))
			}
			return fail(1, "%s", strings.TrimPrefix(err.Error(), "platform: "))
		}
		fmt.Fprintf(stdout, "platform: sent %d webhooks (%d history items again), %d retries\n", last.Delivered, last.Resent, last.Retries)
		if *exit {
			return 0
		}
	}
	fmt.Fprintln(stdout, "platform: serving until interrupted")
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "platform: stopping")
		return 0
	case err := <-served:
		return fail(1, "%v", err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
