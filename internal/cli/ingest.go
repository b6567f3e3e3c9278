package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents/internal/server"
)

// Limits of "rawevents ingest".
const (
	// DefaultIngestBatch is how many events one request carries by default.
	DefaultIngestBatch = 100
	// MaxIngestBatch is the most events one request may carry.
	MaxIngestBatch = 1000
	// DefaultIngestConcurrency is how many requests are in flight at once
	// by default.
	DefaultIngestConcurrency = 4
	// MaxIngestConcurrency bounds --concurrency.
	MaxIngestConcurrency = 64
	// MaxIngestLineBytes is the longest input line read. A longer line is
	// rejected without being sent, and reading goes on with the next one.
	// It is well above what a server accepts by default (a 10 MiB request),
	// so the server, not the reader, is what normally says "too large".
	MaxIngestLineBytes = 16 << 20
	// DefaultIngestServer is the server's address when neither --server
	// nor RAWEVENTS_SERVER names one: what "rawevents serve" listens on.
	DefaultIngestServer = "http://127.0.0.1:8080"

	// ingestBatchBytes closes a batch before its body would exceed the
	// server's default request limit. A server configured lower answers
	// 413, and the batch is split until its parts fit.
	ingestBatchBytes = server.DefaultMaxBatchBytes
	// ingestRequestTimeout bounds one request, answer included.
	ingestRequestTimeout = 2 * time.Minute
	// maxShownRejections is how many rejections the human summary lists.
	maxShownRejections = 20
	// maxAnswerBytes bounds how much of an answer is read.
	maxAnswerBytes = 16 << 20
)

// IngestOpts are the options of "rawevents ingest", which sends a file of
// newline-delimited CloudEvents JSON to a server, in batches.
type IngestOpts struct {
	GlobalOpts
	// Input is the file to read, or "-" for Stdin.
	Input string
	// Server is the base URL of a "rawevents serve".
	Server string
	// Token is sent as "Authorization: Bearer <token>" when set. It is
	// never printed.
	Token string
	// Batch is how many events one request carries.
	Batch int
	// Concurrency is how many requests are in flight at once.
	Concurrency int
	// Stdin is read when Input is "-".
	Stdin io.Reader
	// Progress receives a progress bar; nil shows none. The command sets it
	// to stderr when stderr is a terminal and --json is not set.
	Progress io.Writer
	// Client sends the requests. Nil means a client made for Concurrency.
	Client *http.Client

	endpoint string // set by Validate
}

// IngestSummary is what became of the input, printed at the end (as one
// JSON object with --json). Every non-blank line is counted exactly once,
// in Stored, Duplicates, Rejected or NotSent.
type IngestSummary struct {
	// Stored counts the events this run stored.
	Stored int `json:"stored"`
	// Duplicates counts events the server already held, from an earlier
	// delivery of the same (source, id): they stored nothing.
	Duplicates int `json:"duplicates"`
	// Rejected counts events that were not stored: refused by the server,
	// not JSON objects, or lost to a failed request. Rejections says why.
	Rejected int `json:"rejected"`
	// NotSent counts events never sent because the command stopped early
	// (Stopped says why). Reading standard input stops too, so its unread
	// rest is not counted.
	NotSent int `json:"not_sent"`
	// Position is the highest log position among stored and duplicate
	// events: wait for it to read your own writes.
	Position int64 `json:"position"`
	// Requests counts the HTTP requests sent.
	Requests int `json:"requests"`
	// Rejections lists each rejected event by line number, in line order.
	Rejections []Rejection `json:"rejections"`
	// Stopped says why the command stopped before the end of the input;
	// empty when it read everything.
	Stopped string `json:"stopped,omitempty"`
}

// Rejection is one event that was not stored, and why.
type Rejection struct {
	// Line is the event's line in the input, from 1; blank lines count.
	Line int `json:"line"`
	// Reason is the server's message, or why the line was not sent.
	Reason string `json:"reason"`

	seq int // the event's rank among the input's events, to merge runs
}

func newIngestCommand(globals *GlobalOpts, getenv func(string) string) *cobra.Command {
	opts := &IngestOpts{}
	cmd := &cobra.Command{
		Use:   "ingest FILE|-",
		Short: "Send newline-delimited CloudEvents JSON to a server, in batches",
		Long: `Send a file (or standard input, "-") of CloudEvents in the JSON format, one per
line, to a rawevents server, in batches of --batch events with --concurrency
requests in flight. Blank lines are skipped.

A line that is not a JSON object, or an event the server refuses, is rejected
on its own: the rest of its batch is sent again without it. At the end a
summary says how many events were stored, were duplicates of earlier
deliveries, or were rejected (and why, by line number). The exit status is
non-zero when any event was rejected or not sent. Sending a file again is
safe: events already stored count as duplicates.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.GlobalOpts = *globals
			opts.Input = args[0]
			opts.Stdin = cmd.InOrStdin()
			if !cmd.Flags().Changed("token") {
				opts.Token = getenv("RAWEVENTS_TOKEN")
			}
			if !opts.JSON && isTerminal(cmd.ErrOrStderr()) {
				opts.Progress = cmd.ErrOrStderr()
			}
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Server, "server", cmp.Or(getenv("RAWEVENTS_SERVER"), DefaultIngestServer),
		"base URL of the rawevents server (env RAWEVENTS_SERVER)")
	// The default stays out of the flag so that --help never shows a secret.
	f.StringVar(&opts.Token, "token", "", "bearer token with the ingest scope (env RAWEVENTS_TOKEN)")
	f.IntVar(&opts.Batch, "batch", DefaultIngestBatch, fmt.Sprintf("events per request, at most %d", MaxIngestBatch))
	f.IntVar(&opts.Concurrency, "concurrency", DefaultIngestConcurrency, "requests in flight at once")
	return cmd
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// Validate checks the flags and that the input can be read, reporting
// every problem at once. Nothing is sent when it fails.
func (o *IngestOpts) Validate() error {
	var errs []error
	switch o.Input {
	case "":
		errs = append(errs, errors.New("name a file to send, or - for standard input"))
	case "-":
		if o.Stdin == nil {
			errs = append(errs, errors.New("-: no standard input"))
		}
	default:
		if err := checkReadable(o.Input); err != nil {
			errs = append(errs, err)
		}
	}
	if u, err := url.Parse(o.Server); err != nil {
		errs = append(errs, fmt.Errorf("--server: %w", err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("--server %q: want an http:// or https:// URL such as %s", u.Redacted(), DefaultIngestServer))
	} else {
		o.endpoint = strings.TrimSuffix(u.String(), "/") + "/v1/events"
	}
	if strings.ContainsFunc(o.Token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		errs = append(errs, errors.New("--token contains a space or a control character")) // the value is a secret: not repeated
	}
	if o.Batch < 1 || o.Batch > MaxIngestBatch {
		errs = append(errs, fmt.Errorf("--batch must be between 1 and %d", MaxIngestBatch))
	}
	if o.Concurrency < 1 || o.Concurrency > MaxIngestConcurrency {
		errs = append(errs, fmt.Errorf("--concurrency must be between 1 and %d", MaxIngestConcurrency))
	}
	return errors.Join(errs...)
}

func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // opened to check, read-only
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.IsDir() {
		return fmt.Errorf("%s is a directory, not a file of events", path)
	}
	return nil
}

// Run sends the input and prints the summary. It returns an error, after
// the summary, when any event was rejected or not sent.
//
// On cancellation (Ctrl-C) it sends nothing more, waits for the requests
// in flight (their events may be stored already; their answers say so),
// and prints the summary.
func (o *IngestOpts) Run(ctx context.Context, out io.Writer) error {
	input, total, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer input.Close() //nolint:errcheck // read-only

	r := newIngestRun(ctx, o, total)
	defer r.cancel(nil)
	sum, runErr := r.run(input)

	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else if err := printIngestSummary(out, sum); err != nil {
		return err
	}
	return runErr
}

// open opens the input. For a regular file it also counts its events
// (non-blank lines), for the progress bar and the count of events not
// sent; total is -1 otherwise (standard input, pipes), where counting would
// consume the input.
func (o *IngestOpts) open(ctx context.Context) (io.ReadCloser, int, error) {
	if o.Input == "-" {
		return io.NopCloser(o.Stdin), -1, nil
	}
	f, err := os.Open(o.Input)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return f, -1, nil //nolint:nilerr // not countable: read it once, without a total
	}
	total := 0
	err = scanLines(f, func(_ int, line []byte, _ bool) bool {
		if !blank(line) {
			total++
		}
		return total%4096 != 0 || ctx.Err() == nil
	})
	if err == nil && ctx.Err() != nil {
		f.Close() //nolint:errcheck,gosec // nothing was sent
		return nil, 0, errors.New("interrupted before sending anything")
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close() //nolint:errcheck,gosec // failing already
		return nil, 0, fmt.Errorf("read %s: %w", o.Input, err)
	}
	return f, total, nil
}

// scanLines calls fn with each line of r (numbered from 1, without its
// line ending) until fn returns false. A line longer than
// MaxIngestLineBytes is skipped, and fn is called with tooLong set and an
// empty line.
func scanLines(r io.Reader, fn func(lineNo int, line []byte, tooLong bool) bool) error {
	split := &lineSplitter{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxIngestLineBytes+1)
	sc.Split(split.split)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := sc.Bytes()
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		}
		tooLong := split.tooLong
		split.tooLong = false
		if !fn(lineNo, line, tooLong) {
			return nil
		}
	}
	return sc.Err()
}

// lineSplitter is bufio.ScanLines that skips overlong lines, so that one
// of them does not end the scan with bufio.ErrTooLong.
type lineSplitter struct {
	skipping bool // inside an overlong line, dropping its bytes
	tooLong  bool // the token just returned stands for an overlong line
}

func (s *lineSplitter) split(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		if s.skipping {
			s.skipping, s.tooLong = false, true
			return i + 1, []byte{}, nil
		}
		return i + 1, bytes.TrimSuffix(data[:i], []byte("\r")), nil
	}
	switch {
	case atEOF && len(data) == 0:
		return 0, nil, nil
	case atEOF && s.skipping:
		s.skipping, s.tooLong = false, true
		return len(data), []byte{}, nil
	case atEOF:
		return len(data), bytes.TrimSuffix(data, []byte("\r")), nil
	case len(data) > MaxIngestLineBytes:
		s.skipping = true
		return len(data), nil, nil
	}
	return 0, nil, nil // read more
}

func blank(line []byte) bool { return len(bytes.TrimSpace(line)) == 0 }

// pending is one event read from the input and not yet answered for.
type pending struct {
	line int    // line number in the input
	seq  int    // rank among the input's events
	raw  []byte // the line's bytes, sent as they are
}

// ingestRun is one run of the command: the reader, the senders, and the
// tally they share.
type ingestRun struct {
	opts   *IngestOpts
	client *http.Client
	total  int // events in the input; -1 when unknown
	runID  string
	bar    *progressbar.ProgressBar // nil without a progress bar

	// stop ends when the run must send nothing more: on cancellation of
	// the caller's context, or with the cause that makes every later
	// request fail the same way (401, 403, no connection).
	stop   context.Context
	cancel context.CancelCauseFunc
	// send is the context of requests: not cancelled with stop, so that
	// requests in flight are answered.
	send context.Context

	mu       sync.Mutex
	sum      IngestSummary
	read     int  // events read
	readDone bool // the input was read to its end
}

func newIngestRun(ctx context.Context, o *IngestOpts, total int) *ingestRun {
	r := &ingestRun{opts: o, client: o.Client, total: total, runID: uuid.NewString()[:8], send: context.WithoutCancel(ctx)}
	r.stop, r.cancel = context.WithCancelCause(ctx)
	r.sum.Rejections = []Rejection{}
	if r.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.Concurrency
		r.client = &http.Client{Transport: t}
	}
	if o.Progress != nil && total != 0 {
		r.bar = progressbar.NewOptions64(int64(total),
			progressbar.OptionSetWriter(o.Progress),
			progressbar.OptionSetDescription("ingest"),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	return r
}

// run reads the input and sends it, then returns the summary and the error
// the command ends with.
func (r *ingestRun) run(input io.Reader) (IngestSummary, error) {
	batches := make(chan []pending)
	go func() {
		defer close(batches)
		r.readInput(input, batches)
	}()
	var wg sync.WaitGroup
	for range r.opts.Concurrency {
		wg.Go(func() {
			for {
				select {
				case batch, ok := <-batches:
					if !ok {
						return
					}
					r.deliver(batch)
				case <-r.stop.Done():
					// The reader counts what it still holds as not sent.
					// It is not waited for: it may be blocked reading a
					// terminal or a pipe.
					return
				}
			}
		})
	}
	wg.Wait()
	if r.bar != nil {
		r.bar.Finish() //nolint:errcheck,gosec // clears the bar; nothing to do if that fails
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	sum := r.sum
	sum.Rejections = slices.Clone(sum.Rejections)
	slices.SortFunc(sum.Rejections, func(a, b Rejection) int { return cmp.Compare(a.seq, b.seq) })
	sum.NotSent = max(r.total, r.read) - sum.Stored - sum.Duplicates - sum.Rejected
	var cause error
	if r.stop.Err() != nil {
		cause = context.Cause(r.stop)
	}
	if errors.Is(cause, context.Canceled) && r.readDone && sum.NotSent == 0 {
		cause = nil // interrupted once everything was answered for
	}
	counts := fmt.Sprintf("%s rejected", plural(sum.Rejected, "event"))
	if sum.NotSent > 0 {
		counts = fmt.Sprintf("%d rejected, %d not sent", sum.Rejected, sum.NotSent)
	}
	switch {
	case cause != nil && errors.Is(cause, context.Canceled):
		sum.Stopped = "interrupted"
		return sum, fmt.Errorf("interrupted: %s", counts)
	case cause != nil:
		sum.Stopped = cause.Error()
		return sum, fmt.Errorf("stopped: %w; %s", cause, counts)
	case sum.Rejected > 0 || sum.NotSent > 0:
		return sum, errors.New(counts)
	}
	return sum, nil
}

// readInput reads the input into batches until its end or until the run
// stops. Lines that are not JSON objects are rejected here.
func (r *ingestRun) readInput(input io.Reader, batches chan<- []pending) {
	var batch []pending
	size := 0 // of the batch's body
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case batches <- batch:
			batch, size = nil, 0
			return true
		case <-r.stop.Done():
			return false
		}
	}
	seq := 0
	err := scanLines(input, func(lineNo int, line []byte, tooLong bool) bool {
		if r.stop.Err() != nil {
			return false
		}
		if !tooLong && blank(line) {
			return true
		}
		seq++
		r.mu.Lock()
		r.read++
		r.mu.Unlock()
		e := pending{line: lineNo, seq: seq}
		if tooLong {
			r.reject(fmt.Sprintf("longer than %d MiB: not sent", MaxIngestLineBytes>>20), e)
			return true
		}
		if reason := notAnObject(line); reason != "" {
			r.reject(reason, e)
			return true
		}
		e.raw = bytes.Clone(line)
		if len(batch) == r.opts.Batch || (len(batch) > 0 && size+len(e.raw)+1 > ingestBatchBytes) {
			if !flush() {
				return false
			}
		}
		batch = append(batch, e)
		size += len(e.raw) + 1
		return true
	})
	if err != nil {
		r.cancel(fmt.Errorf("read %s: %w", r.inputName(), err))
		return
	}
	if flush() && r.stop.Err() == nil {
		r.mu.Lock()
		r.readDone = true
		r.mu.Unlock()
	}
}

func (r *ingestRun) inputName() string {
	if r.opts.Input == "-" {
		return "standard input"
	}
	return r.opts.Input
}

// notAnObject says why line is not a JSON object, or returns "".
func notAnObject(line []byte) string {
	if !json.Valid(line) {
		var v json.RawMessage
		err := json.Unmarshal(line, &v)
		return fmt.Sprintf("not valid JSON: %v", err)
	}
	switch bytes.TrimSpace(line)[0] {
	case '{':
		return ""
	case '[':
		return "not a JSON object but an array (send one event per line)"
	case '"':
		return "not a JSON object but a string"
	case 't', 'f':
		return "not a JSON object but a boolean"
	case 'n':
		return "not a JSON object but null"
	default:
		return "not a JSON object but a number"
	}
}

// deliver sends a batch and records what became of each of its events.
// The server stores a batch all or nothing, so an event it refuses is
// rejected alone and the batch is sent again without it; when the server
// does not say which event it refuses, or the batch is too large, the
// batch is split in halves.
func (r *ingestRun) deliver(batch []pending) {
	for len(batch) > 0 {
		if r.stop.Err() != nil {
			return // counted as not sent
		}
		a := r.post(batch)
		switch {
		case a.err != nil:
			r.reject(a.err.Error(), batch...)
			if !errors.Is(a.err, errProtocol) {
				r.cancel(a.err) // the server is unreachable: so would it be for the next batch
			}
			return
		case a.status == http.StatusOK:
			r.stored(a.response)
			r.progress(len(batch))
			return
		case a.status == http.StatusBadRequest && len(a.invalid) > 0:
			keep := batch[:0:0]
			for i, e := range batch {
				if reason, ok := a.invalid[i]; ok {
					r.reject(reason, e)
				} else {
					keep = append(keep, e)
				}
			}
			batch = keep
		case (a.status == http.StatusBadRequest || a.status == http.StatusRequestEntityTooLarge) && len(batch) > 1:
			half := len(batch) / 2
			r.deliver(batch[:half])
			r.deliver(batch[half:])
			return
		case a.status == http.StatusBadRequest && a.detail != "":
			r.reject(a.detail, batch...)
			return
		default:
			reason := fmt.Sprintf("server answered %d %s", a.status, http.StatusText(a.status))
			if a.detail != "" {
				reason += ": " + a.detail
			}
			r.reject(reason, batch...)
			switch a.status {
			case http.StatusUnauthorized, http.StatusForbidden:
				r.cancel(fmt.Errorf("%s (check --token or RAWEVENTS_TOKEN)", reason))
			case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
				r.cancel(fmt.Errorf("%s (is %s a rawevents server?)", reason, r.opts.Server))
			}
			return
		}
	}
}

// errProtocol marks an answer that makes no sense, as opposed to no
// answer at all.
var errProtocol = errors.New("unexpected answer")

// answer is the server's answer to one request, or err when there is none.
type answer struct {
	status   int
	response *server.IngestResponse // of a 200
	detail   string                 // the problem's detail, or title
	invalid  map[int]string         // message by index, for errors located at body[i]
	err      error
}

// post sends batch as one application/cloudevents-batch+json request: a
// JSON array of the lines' bytes as they were read.
func (r *ingestRun) post(batch []pending) answer {
	var body bytes.Buffer
	body.WriteByte('[')
	for i, e := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(e.raw)
	}
	body.WriteByte(']')

	ctx, cancel := context.WithTimeout(r.send, ingestRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.opts.endpoint, &body)
	if err != nil {
		return answer{err: err}
	}
	r.mu.Lock()
	r.sum.Requests++
	req.Header.Set("X-Request-Id", fmt.Sprintf("ingest-%s-%d", r.runID, r.sum.Requests))
	r.mu.Unlock()
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "rawevents-ingest")
	if r.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.opts.Token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return answer{err: fmt.Errorf("cannot reach %s: %w", r.opts.Server, err)}
	}
	defer resp.Body.Close() //nolint:errcheck // read to the end below
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return answer{err: fmt.Errorf("read the answer of %s: %w", r.opts.Server, err)}
	}
	a := answer{status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		var ok server.IngestResponse
		if err := json.Unmarshal(data, &ok); err != nil || len(ok.Results) != len(batch) {
			return answer{err: fmt.Errorf("%w from %s: %d results for %d events (%v)", errProtocol, r.opts.Server, len(ok.Results), len(batch), err)}
		}
		a.response = &ok
		return a
	}
	var problem struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Location string `json:"location"`
			Message  string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(data, &problem) == nil {
		a.detail = cmp.Or(problem.Detail, problem.Title)
		for _, e := range problem.Errors {
			inner, ok := strings.CutPrefix(e.Location, "body[")
			inner, ok2 := strings.CutSuffix(inner, "]")
			i, err := strconv.Atoi(inner)
			if ok && ok2 && err == nil && i >= 0 && i < len(batch) {
				if a.invalid == nil {
					a.invalid = map[int]string{}
				}
				a.invalid[i] = cmp.Or(e.Message, a.detail)
			}
		}
	}
	return a
}

// stored records the answer to a batch the server took.
func (r *ingestRun) stored(res *server.IngestResponse) {
	r.mu.Lock()
	for _, x := range res.Results {
		if x.Duplicate {
			r.sum.Duplicates++
		} else {
			r.sum.Stored++
		}
	}
	r.sum.Position = max(r.sum.Position, res.Position)
	r.mu.Unlock()
}

// reject records events that were not stored, and why.
func (r *ingestRun) reject(reason string, events ...pending) {
	r.mu.Lock()
	for _, e := range events {
		r.sum.Rejections = append(r.sum.Rejections, Rejection{Line: e.line, Reason: reason, seq: e.seq})
	}
	r.sum.Rejected += len(events)
	r.mu.Unlock()
	r.progress(len(events))
}

func (r *ingestRun) progress(n int) {
	if r.bar != nil {
		r.bar.Add(n) //nolint:errcheck,gosec // a progress bar that fails to draw is no reason to stop
	}
}

// printIngestSummary writes the summary for humans: the counts, then the
// rejections, a run of consecutive events rejected for the same reason on
// one line, at most maxShownRejections lines.
func printIngestSummary(out io.Writer, sum IngestSummary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "stored %d, duplicates %d, rejected %d", sum.Stored, sum.Duplicates, sum.Rejected)
	if sum.NotSent > 0 {
		fmt.Fprintf(&b, ", not sent %d", sum.NotSent)
	}
	b.WriteByte('\n')
	shown, lines := 0, 0
	rej := sum.Rejections
	for i := 0; i < len(rej) && lines < maxShownRejections; lines++ {
		j := i + 1
		for j < len(rej) && rej[j].Reason == rej[i].Reason && rej[j].seq == rej[j-1].seq+1 {
			j++
		}
		if j == i+1 {
			fmt.Fprintf(&b, "line %d: %s\n", rej[i].Line, rej[i].Reason)
		} else {
			fmt.Fprintf(&b, "lines %d-%d: %s\n", rej[i].Line, rej[j-1].Line, rej[i].Reason)
		}
		shown += j - i
		i = j
	}
	if shown < len(rej) {
		fmt.Fprintf(&b, "… and %d more\n", len(rej)-shown)
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
