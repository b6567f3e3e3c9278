package storetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// CrashChildEnv is set in the environment of the child process that
// KillDuringAppends starts. A driver's TestMain checks it and, when set,
// opens its store and calls AppendUntilKilled instead of running tests.
const CrashChildEnv = "RAWEVENTS_STORETEST_CRASH_CHILD"

// Ack is one acknowledged append as the child reported it.
type Ack struct {
	ID       uuid.UUID
	StreamID string
	Version  int64
	Position int64
}

// AppendUntilKilled is the child's side of KillDuringAppends: it appends
// small batches to a few streams for ever and writes one line per event
// of every acknowledged append to out.
func AppendUntilKilled[TTx any](ctx context.Context, store *rawevents.Store[TTx], out io.Writer) error {
	w := bufio.NewWriter(out)
	for i := 0; ; i++ {
		stream := fmt.Sprintf("crash-%d", i%7)
		res, err := store.Append(ctx, stream, event.Any, numbered(1+i%3)...)
		if err != nil {
			return err
		}
		for _, e := range res.Events {
			fmt.Fprintf(w, "%s %s %d %d\n", e.ID, e.StreamID, e.StreamVersion, e.Position)
		}
		if err := w.Flush(); err != nil { // the ack leaves the process only after the commit
			return err
		}
	}
}

// KillDuringAppends starts child (a test binary whose TestMain sees
// CrashChildEnv and calls AppendUntilKilled), reads its acknowledgements
// until it has at least n, kills it with SIGKILL mid-append, and returns
// them.
func KillDuringAppends(t *testing.T, child *exec.Cmd, n int) []Ack {
	t.Helper()
	stdout := startChild(t, child, CrashChildEnv)
	var acks []Ack
	lines := bufio.NewScanner(stdout)
	deadline := time.Now().Add(time.Minute)
	for len(acks) < n && lines.Scan() {
		var a Ack
		var id string
		if _, err := fmt.Sscanf(lines.Text(), "%s %s %d %d", &id, &a.StreamID, &a.Version, &a.Position); err != nil {
			continue // not an ack: test framework output
		}
		var err error
		if a.ID, err = uuid.Parse(id); err != nil {
			t.Fatalf("child printed %q", lines.Text())
		}
		acks = append(acks, a)
		if time.Now().After(deadline) {
			break
		}
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait() //nolint:errcheck // killed on purpose
	if len(acks) < n {
		t.Fatalf("the child acknowledged %d appends before it stopped, want %d", len(acks), n)
	}
	return acks
}

// Main is a driver test binary's TestMain. Started by a storetest test as
// one of its children (the environment has one of children's keys, such
// as CrashChildEnv or ClaimChildEnv, set), it runs that child and exits,
// non-zero if it failed; otherwise it runs the tests.
func Main(m *testing.M, children map[string]func() error) {
	for env, child := range children {
		if os.Getenv(env) == "" {
			continue
		}
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startChild starts child with env set to 1 in its environment, and
// returns its standard output. The child is killed, if still running,
// when the test ends.
func startChild(t *testing.T, child *exec.Cmd, env string) io.Reader {
	t.Helper()
	child.Env = append(child.Environ(), env+"=1")
	if child.Stderr == nil {
		child.Stderr = os.Stderr // what a failing child says
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() }) //nolint:errcheck // most are killed already
	return stdout
}

// CheckAcknowledged checks a store reopened after KillDuringAppends: every
// acknowledged event is there at the version and position it was
// acknowledged with, the log and its streams are consistent (positions
// increasing, versions 1..n without holes, stream info matching the last
// event), and the store takes appends again.
func CheckAcknowledged[TTx any](t *testing.T, store *rawevents.Store[TTx], acks []Ack) {
	t.Helper()
	ctx := context.Background()
	byID := map[uuid.UUID]event.Event{}
	lastOfStream := map[string]event.Event{}
	var after int64
	for {
		page, err := store.ReadAll(ctx, &rawevents.ReadAllOpts{After: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Position <= after {
				t.Fatalf("position %d after %d", e.Position, after)
			}
			if prev := lastOfStream[e.StreamID]; e.StreamVersion != prev.StreamVersion+1 {
				t.Fatalf("stream %s: version %d follows %d", e.StreamID, e.StreamVersion, prev.StreamVersion)
			}
			byID[e.ID], lastOfStream[e.StreamID], after = e, e, e.Position
		}
	}
	for _, a := range acks {
		e, ok := byID[a.ID]
		if !ok {
			t.Fatalf("acknowledged event %s (stream %s v%d at %d) is lost", a.ID, a.StreamID, a.Version, a.Position)
		}
		if e.StreamID != a.StreamID || e.StreamVersion != a.Version || e.Position != a.Position {
			t.Fatalf("event %s acknowledged as %s v%d at %d, stored as %s v%d at %d", a.ID, a.StreamID, a.Version, a.Position, e.StreamID, e.StreamVersion, e.Position)
		}
	}
	for stream, last := range lastOfStream {
		info, err := store.StreamInfo(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if info.Version != last.StreamVersion || info.LastPosition != last.Position {
			t.Fatalf("stream %s: info says v%d at %d, the log ends at v%d at %d", stream, info.Version, info.LastPosition, last.StreamVersion, last.Position)
		}
		if _, err := store.Append(ctx, stream, event.Exact(last.StreamVersion), event.Proposed{Type: "after.restart"}); err != nil {
			t.Fatalf("append after restart: %v", err)
		}
	}
	t.Logf("%d acknowledged events survived the kill; the log holds %d", len(acks), len(byID))
}
