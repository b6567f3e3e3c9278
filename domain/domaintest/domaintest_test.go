package domaintest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/domain/domaintest"
	"github.com/rawevents/rawevents/event"
)

type Deposited struct{ Amount int }
type Withdrawn struct{ Amount int }
type unregistered struct{}

type Withdraw struct {
	Account string
	Amount  int
}

func (c Withdraw) AggregateID() string { return c.Account }

var errInsufficient = errors.New("insufficient funds")

func account() *domain.Aggregate[int] {
	types := domain.NewTypes()
	if err := errors.Join(domain.Register[Deposited](types, "deposited", 1), domain.Register[Withdrawn](types, "withdrawn", 1)); err != nil {
		panic(err)
	}
	return &domain.Aggregate[int]{Name: "account", Types: types, Apply: func(balance int, e any) int {
		switch e := e.(type) {
		case Deposited:
			return balance + e.Amount
		case Withdrawn:
			return balance - e.Amount
		}
		return balance
	}}
}

func withdraw(amount int) domain.Decision[int] {
	return func(balance int) ([]any, error) {
		if balance < amount {
			return nil, errInsufficient
		}
		return []any{Withdrawn{Amount: amount}}, nil
	}
}

func processor() *domain.Processor[struct{}] {
	return &domain.Processor[struct{}]{
		Name: "bank", Types: []string{"bank.withdrawal"}, Router: domain.NewRouter[struct{}](),
		Process: func(_ context.Context, raw event.Event) ([]domain.Command, error) {
			var d struct {
				Account string `json:"account"`
				Amount  int    `json:"amount"`
			}
			if err := domain.RawData(raw, &d); err != nil {
				return nil, err
			}
			return []domain.Command{Withdraw{Account: d.Account, Amount: d.Amount}}, nil
		},
	}
}

func TestAggregateScenarios(t *testing.T) {
	t.Parallel()
	state := domaintest.Given(account(), Deposited{Amount: 100}).When(t, withdraw(30)).Then(t, Withdrawn{Amount: 30})
	if state != 70 {
		t.Fatalf("state after: %d", state)
	}
	domaintest.Given(account(), Deposited{Amount: 10}).When(t, withdraw(30)).ThenError(t, errInsufficient)
	domaintest.Given(account()).When(t, func(int) ([]any, error) { return nil, nil }).Then(t)
}

func TestProcessorScenarios(t *testing.T) {
	t.Parallel()
	raw := domaintest.Raw(t, domaintest.RawEvent{Source: "bank", ID: "1", Type: "bank.withdrawal", Data: map[string]any{"account": "a1", "amount": 5}})
	domaintest.Process(processor(), raw).Then(t, Withdraw{Account: "a1", Amount: 5})
	other := domaintest.Raw(t, domaintest.RawEvent{Source: "bank", ID: "2", Type: "bank.audit"})
	domaintest.Process(processor(), other).ThenIgnored(t)
}

// fakeT records a failure instead of failing the real test.
type fakeT struct {
	testing.TB
	mu     sync.Mutex
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// fails runs check against a fake T and returns its failure message.
func fails(check func(t testing.TB)) string {
	f := &fakeT{}
	done := make(chan struct{})
	go func() { defer close(done); check(f) }()
	<-done
	return f.failed
}

func TestTheKitFails(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		check func(t testing.TB)
		want  string
	}{
		"OtherEvents": {func(t testing.TB) {
			domaintest.Given(account(), Deposited{Amount: 100}).When(t, withdraw(30)).Then(t, Withdrawn{Amount: 31})
		}, "want domaintest_test.Withdrawn{Amount:31}"},
		"ErrorWhereEventsExpected": {func(t testing.TB) {
			domaintest.Given(account()).When(t, withdraw(30)).Then(t, Withdrawn{Amount: 30})
		}, "insufficient funds"},
		"EventsWhereErrorExpected": {func(t testing.TB) {
			domaintest.Given(account(), Deposited{Amount: 100}).When(t, withdraw(30)).ThenError(t, errInsufficient)
		}, "want error insufficient funds"},
		"UnregisteredEvent": {func(t testing.TB) {
			domaintest.Given(account()).When(t, func(int) ([]any, error) { return []any{unregistered{}}, nil }).Then(t, unregistered{})
		}, "not registered"},
		"UnregisteredGiven": {func(t testing.TB) {
			domaintest.Given(account(), unregistered{}).State(t)
		}, "given event 0"},
		"OtherCommands": {func(t testing.TB) {
			raw := domaintest.Raw(t, domaintest.RawEvent{Source: "bank", ID: "1", Type: "bank.withdrawal", Data: map[string]any{"account": "a1", "amount": 5}})
			domaintest.Process(processor(), raw).Then(t, Withdraw{Account: "a2", Amount: 5})
		}, "want []domain.Command"},
		"IgnoredExpectedHandled": {func(t testing.TB) {
			raw := domaintest.Raw(t, domaintest.RawEvent{Source: "bank", ID: "1", Type: "bank.audit"})
			domaintest.Process(processor(), raw).Then(t)
		}, "does not handle"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := fails(c.check)
			if got == "" {
				t.Fatal("the kit passed a wrong outcome")
			}
			if !strings.Contains(got, c.want) {
				t.Fatalf("failure %q does not mention %q", got, c.want)
			}
		})
	}
}
