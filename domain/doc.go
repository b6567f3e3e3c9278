// Package domain is the write side of rawevents above the store: it turns
// raw events into domain events.
//
//   - Types registers domain event types under explicit names and schema
//     versions, encoded as JSON.
//   - An Aggregate is a consistency boundary: its state is built by
//     applying its events; a Repository loads it (latest snapshot plus the
//     events after it) and appends what a decision returns at the version
//     the decision saw, deciding again on a conflict and never after a
//     domain error.
//   - A Router sends each Command to the decision registered for its type.
//   - A Processor turns raw events into commands and runs as a
//     subscription of the raw streams, so each raw event's effects commit
//     with its checkpoint and carry its correlation, causation and origin.
//
// Package domaintest has the given/when/then test kit for aggregates and
// processors.
package domain
