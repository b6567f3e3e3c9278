package bank_test

import (
	"testing"

	"github.com/rawevents/rawevents/examples/bank"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/projection/projectiontest"
)

func TestAccounts(t *testing.T) {
	t.Parallel()
	projectiontest.Given(t, bank.Accounts(),
		projectiontest.Event{Stream: "account-a1", Type: "bank.opened", Data: bank.Opened{Owner: "Ana", Deposit: 10_000}},
		projectiontest.Event{Stream: "account-a2", Type: "bank.opened", Data: bank.Opened{Owner: "Bo", Deposit: 500}},
		projectiontest.Event{Stream: "account-a1", Type: "bank.held", Data: bank.Held{Authorization: "auth-1", Amount: 2_500}},
		projectiontest.Event{Stream: "account-a1", Type: "bank.held", Data: bank.Held{Authorization: "auth-2", Amount: 1_000}},
		projectiontest.Event{Stream: "account-a1", Type: "bank.settled", Data: bank.Settled{Authorization: "auth-1", Amount: 3_000}}, // a tip
	).
		Then(t, "account",
			projection.Row{"id": "a1", "owner": "Ana", "balance": 7_000, "held": 1_000},
			projection.Row{"id": "a2", "owner": "Bo", "balance": 500, "held": 0},
		).
		Then(t, "hold", projection.Row{"authorization": "auth-2", "account": "a1", "amount": 1_000})
}
