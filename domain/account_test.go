package domain_test

import (
	"errors"
	"maps"

	"github.com/rawevents/rawevents/domain"
)

// The account aggregate of the tests: a balance that must not go negative.

type Opened struct {
	Owner string `json:"owner"`
}

type Deposited struct {
	Amount int `json:"amount"`
}

type Withdrawn struct {
	Amount int `json:"amount"`
}

type Tagged struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type Account struct {
	Owner   string            `json:"owner"`
	Balance int               `json:"balance"`
	Moves   int               `json:"moves"`
	Tags    map[string]string `json:"tags,omitempty"`
}

var errInsufficient = errors.New("insufficient funds")

func accountTypes() *domain.Types {
	types := domain.NewTypes()
	must(domain.Register[Opened](types, "account.opened", 1))
	must(domain.Register[Deposited](types, "account.deposited", 1))
	must(domain.Register[Withdrawn](types, "account.withdrawn", 1))
	must(domain.Register[Tagged](types, "account.tagged", 1))
	return types
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func accountAggregate(snapshotEvery int) *domain.Aggregate[Account] {
	return &domain.Aggregate[Account]{
		Name:          "account",
		Types:         accountTypes(),
		SnapshotEvery: snapshotEvery,
		Apply: func(s Account, e any) Account {
			switch e := e.(type) {
			case Opened:
				s.Owner = e.Owner
			case Deposited:
				s.Balance += e.Amount
			case Withdrawn:
				s.Balance -= e.Amount
			case Tagged:
				tags := maps.Clone(s.Tags)
				if tags == nil {
					tags = map[string]string{}
				}
				tags[e.Key] = e.Value
				s.Tags = tags
			}
			s.Moves++
			return s
		},
	}
}

func withdraw(amount int) domain.Decision[Account] {
	return func(s Account) ([]any, error) {
		if s.Balance < amount {
			return nil, errInsufficient
		}
		return []any{Withdrawn{Amount: amount}}, nil
	}
}

func deposit(amount int) domain.Decision[Account] {
	return func(Account) ([]any, error) { return []any{Deposited{Amount: amount}}, nil }
}
