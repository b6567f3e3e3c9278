package bank

import (
	"context"
	"errors"
	"fmt"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/event"
)

// CardEvent is the data of the card processor's raw events.
type CardEvent struct {
	Account       string `json:"account"`
	Owner         string `json:"owner,omitempty"`
	Deposit       int64  `json:"deposit,omitempty"`
	Authorization string `json:"authorization,omitempty"`
	Amount        int64  `json:"amount,omitempty"`
}

// ErrNoAccount is a raw event that names no account: an error, not a
// decision, so the raw event is retried and then parked.
var ErrNoAccount = errors.New("raw event names no account")

// Process turns a raw event into the command it asks for.
func Process(_ context.Context, raw event.Event) ([]domain.Command, error) {
	var d CardEvent
	if err := domain.RawData(raw, &d); err != nil {
		return nil, err
	}
	if d.Account == "" {
		return nil, fmt.Errorf("%s: %w", raw.Type, ErrNoAccount)
	}
	switch raw.Type {
	case "account.opened":
		return []domain.Command{Open{Account: d.Account, Owner: d.Owner, Deposit: d.Deposit}}, nil
	case "card.authorized":
		return []domain.Command{Authorize{Account: d.Account, Authorization: d.Authorization, Amount: d.Amount}}, nil
	case "card.settled":
		return []domain.Command{Settle{Account: d.Account, Authorization: d.Authorization, Amount: d.Amount}}, nil
	}
	return nil, nil
}

// accountOf keys raw events by account, so that each account's events
// are processed in log order.
func accountOf(raw event.Event) string {
	var d CardEvent
	_ = domain.RawData(raw, &d) // Process reports a malformed one
	return d.Account
}

// Setup returns the bank's processor and its accounts on store, whatever
// its backend.
func Setup[TTx any](store *rawevents.Store[TTx]) (*domain.Processor[TTx], *domain.Repository[TTx, Account], error) {
	accounts, err := domain.NewRepository(store, Aggregate())
	if err != nil {
		return nil, nil, err
	}
	router := domain.NewRouter[TTx]()
	if err := errors.Join(
		domain.RouteDecide(router, accounts, Open.Decide),
		domain.RouteDecide(router, accounts, Authorize.Decide),
		domain.RouteDecide(router, accounts, Settle.Decide),
	); err != nil {
		return nil, nil, err
	}
	return &domain.Processor[TTx]{
		Name:    "bank",
		Version: 1, // recorded on every event; raise it when Process changes
		Types:   []string{"account.opened", "card.authorized", "card.settled"},
		Key:     accountOf,
		Process: Process,
		Router:  router,
	}, accounts, nil
}
