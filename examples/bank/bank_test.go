package bank_test

import (
	"testing"

	"github.com/rawevents/rawevents/domain/domaintest"
	"github.com/rawevents/rawevents/examples/bank"
	"github.com/rawevents/rawevents/rawtest"
)

func TestAccount(t *testing.T) {
	t.Parallel()
	opened := bank.Opened{Owner: "Ana", Deposit: 10_000}
	hold := bank.Held{Authorization: "auth-1", Amount: 2_500}

	t.Run("AuthorizationHoldsFunds", func(t *testing.T) {
		t.Parallel()
		state := domaintest.Given(bank.Aggregate(), opened).
			When(t, bank.Authorize{Account: "acc-1", Authorization: "auth-1", Amount: 2_500}.Decide).
			Then(t, hold)
		if state.Available() != 7_500 {
			t.Fatalf("available: %d", state.Available())
		}
	})
	t.Run("SettlementDebitsAndReleasesTheHold", func(t *testing.T) {
		t.Parallel()
		state := domaintest.Given(bank.Aggregate(), opened, hold).
			When(t, bank.Settle{Account: "acc-1", Authorization: "auth-1", Amount: 3_000}.Decide). // with a tip
			Then(t, bank.Settled{Authorization: "auth-1", Amount: 3_000})
		if state.Balance != 7_000 || len(state.Holds) != 0 {
			t.Fatalf("state: %+v", state)
		}
	})
	t.Run("SettlementBeyondTheBalanceIsRefused", func(t *testing.T) {
		t.Parallel()
		domaintest.Given(bank.Aggregate(), opened).
			When(t, bank.Settle{Account: "acc-1", Authorization: "auth-9", Amount: 10_001}.Decide).
			ThenError(t, bank.ErrInsufficient)
	})
	t.Run("AuthorizationBeyondTheAvailableFundsIsRefused", func(t *testing.T) {
		t.Parallel()
		domaintest.Given(bank.Aggregate(), opened, hold).
			When(t, bank.Authorize{Account: "acc-1", Authorization: "auth-2", Amount: 8_000}.Decide).
			ThenError(t, bank.ErrInsufficient)
	})
	t.Run("OpeningTwiceRecordsNothing", func(t *testing.T) {
		t.Parallel()
		domaintest.Given(bank.Aggregate(), opened).When(t, bank.Open{Account: "acc-1", Owner: "Bob"}.Decide).Then(t)
	})
}

func TestProcessor(t *testing.T) {
	t.Parallel()
	processor, _, err := bank.Setup(rawtest.Memory(t))
	if err != nil {
		t.Fatal(err)
	}
	process := func(typ string, data bank.CardEvent) *domaintest.ProcessorOutcome {
		raw := domaintest.Raw(t, domaintest.RawEvent{Source: "cardhub", ID: "evt-1", Type: typ, Data: data})
		return domaintest.Process(processor, raw)
	}
	process("card.settled", bank.CardEvent{Account: "acc-1", Authorization: "auth-1", Amount: 3_000}).
		Then(t, bank.Settle{Account: "acc-1", Authorization: "auth-1", Amount: 3_000})
	process("account.opened", bank.CardEvent{Account: "acc-1", Owner: "Ana", Deposit: 10_000}).
		Then(t, bank.Open{Account: "acc-1", Owner: "Ana", Deposit: 10_000})
	process("card.settled", bank.CardEvent{Amount: 3_000}).ThenError(t, bank.ErrNoAccount)
	process("card.declined", bank.CardEvent{Account: "acc-1"}).ThenIgnored(t) // kept, counted, not processed
}
