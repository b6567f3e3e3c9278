package backfill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Args is the River task that runs a backfill (package tasks runs River in
// the store's database). Enqueue it with tasks.Client.InsertTx, or with
// River's Insert; a process whose River client has a Worker registered
// works it. At most one task per Args waits or runs at a time: inserting
// another while one does returns the existing one.
type Args struct {
	// Name is the backfill to run.
	Name string `json:"name"`
	// Restart pulls everything again from the first page (RunOpts.Restart),
	// once per task: the task's retries resume the pass it began.
	Restart bool `json:"restart,omitempty"`
}

// Kind is the task's stored name.
func (Args) Kind() string { return "rawevents.backfill" }

// InsertOpts makes the task unique by its arguments among the tasks that
// wait or run; a completed one does not prevent another.
func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}}}
}

// DefaultSlice is how long one attempt of a backfill task runs before it
// hands over to a fresh attempt (see Worker).
const DefaultSlice = 10 * time.Minute

// Worker works backfill tasks with a Runner. Register it with
// river.AddWorker on the Workers of a tasks.Config.
//
// A task runs in slices: after Slice, the run stops at the end of a page
// and the task is snoozed, to go on at once from the saved cursor in a new
// attempt, which River does not count against MaxAttempts. So no attempt
// runs for hours, and each is bounded by the task's Timeout (Slice plus
// five minutes for the last page), well within River's rescue of stuck
// tasks (one hour by default): a process that dies mid-backfill leaves a
// task that River retries later, and the retry resumes at the cursor. A
// source error fails the attempt (River retries it with backoff, resuming
// at the cursor); an item the log refuses, an unknown backfill or a
// changed event source cancel the task, since retries cannot help. When
// River stops the client, the task is snoozed to resume at the next start.
type Worker struct {
	river.WorkerDefaults[Args]
	runner *Runner
	slice  time.Duration
}

// WorkerConfig configures a Worker. Nil means the defaults.
type WorkerConfig struct {
	// Slice is how long one attempt runs. Default DefaultSlice.
	Slice time.Duration
}

// NewWorker returns a Worker that runs backfills with runner.
func NewWorker(runner *Runner, config *WorkerConfig) *Worker {
	w := &Worker{runner: runner, slice: DefaultSlice}
	if config != nil && config.Slice > 0 {
		w.slice = config.Slice
	}
	return w
}

// Timeout bounds one attempt: its slice, plus time for the page under way.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return w.slice + 5*time.Minute }

// Work runs the task's backfill for one slice.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	p, err := w.runner.Run(ctx, job.Args.Name, &RunOpts{
		Restart:     job.Args.Restart,
		RestartKey:  fmt.Sprintf("river-job-%d", job.ID),
		MaxDuration: w.slice,
		Actor:       fmt.Sprintf("river:%s:%d", job.Kind, job.ID),
	})
	var itemErr *ItemError
	switch {
	case errors.Is(err, ErrCompleted):
		return nil
	case err == nil && p.State == StateCompleted:
		return nil
	case err == nil:
		return river.JobSnooze(0) // the slice is over: go on in a new attempt
	case errors.Is(context.Cause(ctx), river.ErrJobCancelledRemotely):
		return err
	case errors.Is(ctx.Err(), context.Canceled):
		return river.JobSnooze(0) // the client stops: resume at its next start
	case errors.As(err, &itemErr), errors.Is(err, ErrUnknown), errors.Is(err, ErrSourceChanged):
		return river.JobCancel(err)
	}
	return err
}
