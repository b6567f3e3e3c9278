// Package bank is a small, complete rawevents application, the one the
// README walks through.
//
// A (fictional) card processor sends CloudEvents: account.opened (with
// the opening deposit), card.authorized, card.settled. Ingestion keeps
// them as raw events. The bank's processor turns each into a command on
// an Account aggregate (account.go), keyed by account so that an
// account's raw events are processed in order; the account decides what
// the bank records (bank.opened, bank.held, bank.settled), or refuses the
// command with a domain error, such as a settlement the balance does not
// cover (ErrInsufficient).
//
// Setup builds the processor and the account repository on a store of
// any backend; cmd/bank is the rawevents binary with this application in
// its worker role.
package bank
