package domain_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/driver/sqlite"
)

// A bank account whose balance may not go negative: events registered by
// name, state built by applying them, and commands decided against it.
func ExampleRepository_Execute() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	d, err := sqlite.Open(filepath.Join(dir, "events.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := d.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	type Deposited struct{ Amount int }
	type Withdrawn struct{ Amount int }
	types := domain.NewTypes()
	if err := errors.Join(
		domain.Register[Deposited](types, "account.deposited", 1),
		domain.Register[Withdrawn](types, "account.withdrawn", 1),
	); err != nil {
		log.Fatal(err)
	}
	accounts, err := domain.NewRepository(store, &domain.Aggregate[int]{
		Name:  "account",
		Types: types,
		Apply: func(balance int, e any) int {
			switch e := e.(type) {
			case Deposited:
				return balance + e.Amount
			case Withdrawn:
				return balance - e.Amount
			}
			return balance
		},
		SnapshotEvery: 100,
	})
	if err != nil {
		log.Fatal(err)
	}
	errInsufficient := errors.New("insufficient funds")
	withdraw := func(amount int) domain.Decision[int] {
		return func(balance int) ([]any, error) {
			if balance < amount {
				return nil, errInsufficient
			}
			return []any{Withdrawn{Amount: amount}}, nil
		}
	}

	if _, err := accounts.Execute(ctx, "alice", func(int) ([]any, error) { return []any{Deposited{Amount: 100}}, nil }, nil); err != nil {
		log.Fatal(err)
	}
	res, err := accounts.Execute(ctx, "alice", withdraw(30), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("balance", res.State, "at version", res.Append.Version)

	_, err = accounts.Execute(ctx, "alice", withdraw(500), nil)
	fmt.Println("refused:", errors.Is(err, errInsufficient))

	alice, err := accounts.Load(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loaded", alice.State, "from stream", accounts.Aggregate().StreamID("alice"))
	// Output:
	// balance 70 at version 2
	// refused: true
	// loaded 70 from stream account-alice
}
