package bank

import (
	"errors"
	"maps"

	"github.com/rawevents/rawevents/domain"
)

// Account is an account's state, built by applying its events. Amounts
// are in cents.
type Account struct {
	Opened  bool
	Owner   string
	Balance int64
	Holds   map[string]int64 // amount held, by card authorization
}

// Available is the balance less the holds.
func (a Account) Available() int64 {
	n := a.Balance
	for _, h := range a.Holds {
		n -= h
	}
	return n
}

// Domain events: what the bank decided. Their JSON is stored: the tags
// keep it stable when a field is renamed.
type (
	Opened struct {
		Owner   string `json:"owner"`
		Deposit int64  `json:"deposit"`
	}
	Held struct {
		Authorization string `json:"authorization"`
		Amount        int64  `json:"amount"`
	}
	Settled struct {
		Authorization string `json:"authorization"`
		Amount        int64  `json:"amount"`
	}
)

// Aggregate describes accounts: events stored under explicit names and
// schema versions, and a snapshot every 50 events (change SnapshotVersion
// when Account's JSON changes meaning).
func Aggregate() *domain.Aggregate[Account] {
	types := domain.NewTypes()
	domain.MustRegister[Opened](types, "bank.opened", 1)
	domain.MustRegister[Held](types, "bank.held", 1)
	domain.MustRegister[Settled](types, "bank.settled", 1)
	return &domain.Aggregate[Account]{
		Name: "account", Types: types, Apply: apply,
		SnapshotEvery: 50, SnapshotVersion: 1,
	}
}

func apply(a Account, e any) Account {
	a.Holds = maps.Clone(a.Holds) // earlier states share the map: copy it
	switch e := e.(type) {
	case Opened:
		a.Opened, a.Owner, a.Balance = true, e.Owner, e.Deposit
	case Held:
		if a.Holds == nil {
			a.Holds = map[string]int64{}
		}
		a.Holds[e.Authorization] = e.Amount
	case Settled:
		a.Balance -= e.Amount
		delete(a.Holds, e.Authorization)
	}
	return a
}

// ErrInsufficient is a domain error: the account refuses the command.
var ErrInsufficient = errors.New("insufficient funds")

// Commands, each deciding against the account's state.
type (
	Open struct {
		Account, Owner string
		Deposit        int64
	}
	Authorize struct {
		Account, Authorization string
		Amount                 int64
	}
	Settle struct {
		Account, Authorization string
		Amount                 int64
	}
)

func (c Open) AggregateID() string      { return c.Account }
func (c Authorize) AggregateID() string { return c.Account }
func (c Settle) AggregateID() string    { return c.Account }

// Decide opens the account with its first deposit; opening it again
// changes nothing.
func (c Open) Decide(a Account) ([]any, error) {
	if a.Opened {
		return nil, nil
	}
	return []any{Opened{Owner: c.Owner, Deposit: c.Deposit}}, nil
}

// Decide holds the amount if it is available.
func (c Authorize) Decide(a Account) ([]any, error) {
	if c.Amount > a.Available() {
		return nil, ErrInsufficient
	}
	return []any{Held{Authorization: c.Authorization, Amount: c.Amount}}, nil
}

// Decide debits the settled amount, which may differ from the hold (a
// tip), and releases the hold. A settlement the account cannot cover is
// refused.
func (c Settle) Decide(a Account) ([]any, error) {
	if c.Amount > a.Available()+a.Holds[c.Authorization] {
		return nil, ErrInsufficient
	}
	return []any{Settled{Authorization: c.Authorization, Amount: c.Amount}}, nil
}
