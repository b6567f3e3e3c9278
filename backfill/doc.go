// Package backfill bootstraps the raw event log from source systems' APIs:
// it pulls what a source already holds, a page at a time, and stores each
// item as an ordinary raw event, resumable from its cursor after a crash
// or Ctrl-C, within a rate limit, with its progress on record.
//
// # Pages, cursors and exactly once
//
// A Source returns the page after a cursor: items (each with a
// CloudEvents id, type, time, data and content type), the next cursor, and
// whether it is the last page. HTTPSource reads any JSON API that pages
// with a cursor, configured without code (HTTPConfig: the "backfills" of
// the config file); an application writes its own Source for anything
// else and hands it to a Runner.
//
// A Runner turns the items of each page into CloudEvents with the
// backfill's CloudEvents source attribute (Backfill.EventSource) and
// stores them through an ingest.Ingester: the same code that stores the
// HTTP API's CloudEvents and webhooks, under ids derived from (source,
// id). Then it saves the page's next cursor. A crash between the two only
// makes the next run fetch that page again, and the items already stored
// come back as duplicates that store nothing: the log holds every item
// exactly once. For the same reason a fact both pulled and delivered by a
// webhook is stored once, whichever came first, provided both carry the
// same source and id: configure the backfill with the source attribute the
// webhooks arrive with, and take the item's id from the field the webhook
// uses as its id.
//
// # Progress, on record
//
// A backfill's progress lives in the system stream Stream(name)
// ("rawevents:backfill:NAME"): one event when a run starts and one per
// stored page, each holding the whole Progress (cursor, pages, items
// stored and duplicate, total if the source says, state), so the newest
// event is the state and the stream the audit trail of every run. Status
// reads it; List reads every backfill that has run (they are listed in
// IndexStream). Saves expect the stream's version, so two runs of one
// backfill that overlap cannot both go on: the second to save stops with
// ErrConcurrentRun. Subscriptions skip system streams unless asked.
//
// # Running
//
// "rawevents backfill NAME" runs one in the foreground, with a progress
// bar; run it again after Ctrl-C or a crash and it resumes. GET
// /v1/backfills shows the progress of every backfill. In a program,
// Runner.Run runs one, and Worker runs it as a River task (Args) through
// package tasks: retried with backoff after a source error, resumed from
// the cursor after a crash, worked in slices so that no attempt runs for
// hours.
//
// Rate limits are in pages per second (Backfill.Rate, RunOpts.Rate), since
// that is what source APIs count; HTTPSource also retries a request that
// failed with 429 or 5xx, after the Retry-After the source asked for.
//
// # Limits
//
// The cursor must stay valid: a source whose cursors expire (a scroll id
// good for minutes) cannot be resumed after a long stop, and must be
// restarted (RunOpts.Restart), which stores nothing twice but pulls
// everything again. Items are stored one page per transaction: a page the
// log refuses (an item without an id or type, data that is not the JSON
// its content type says) stops the backfill with an *ItemError, and
// nothing of that page is stored. Counts survive crashes only as far as
// the saved progress: the items of a page stored just before a crash are
// counted as duplicates when the next run fetches them again.
package backfill
