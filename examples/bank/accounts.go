package bank

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/projection"
)

// Accounts is the bank's read model: one row per account with its owner
// (searchable), balance and the amount on hold, and one row per open hold,
// kept up to date from the bank's domain events. The query API serves it
// under /v1/read/accounts/account and /v1/read/accounts/hold.
func Accounts() *projection.Projection {
	return &projection.Projection{
		Name:    "accounts",
		Version: 1,
		Types:   []string{"bank.opened", "bank.held", "bank.settled"},
		Tables: []projection.Table{{
			Name: "account",
			Columns: []projection.Column{
				{Name: "id", Type: projection.Text},
				{Name: "owner", Type: projection.Text},
				{Name: "balance", Type: projection.Integer, Index: true},
				{Name: "held", Type: projection.Integer},
				{Name: "updated", Type: projection.Time},
			},
			Key:    []string{"id"},
			Search: []string{"owner"},
		}, {
			Name: "hold",
			Columns: []projection.Column{
				{Name: "authorization", Type: projection.Text},
				{Name: "account", Type: projection.Text, Index: true},
				{Name: "amount", Type: projection.Integer},
			},
			Key: []string{"authorization"},
		}},
		Handle: projectAccount,
	}
}

// projectAccount applies one domain event to its account's rows. Amounts
// add up (tx.Add); a settlement reads back the hold it releases.
func projectAccount(ctx context.Context, tx *projection.Tx, e event.Event) error {
	id := strings.TrimPrefix(e.StreamID, Aggregate().StreamID(""))
	switch e.Type {
	case "bank.opened":
		var d Opened
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		return tx.Upsert(ctx, "account", projection.Row{"id": id, "owner": d.Owner, "balance": d.Deposit, "held": 0, "updated": e.OccurredAt})
	case "bank.held":
		var d Held
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		if err := tx.Upsert(ctx, "hold", projection.Row{"authorization": d.Authorization, "account": id, "amount": d.Amount}); err != nil {
			return err
		}
		return tx.Add(ctx, "account", projection.Row{"id": id, "balance": 0, "held": d.Amount, "updated": e.OccurredAt})
	case "bank.settled":
		var d Settled
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		// The settled amount may differ from the hold (a tip): the whole
		// hold is released.
		hold, err := tx.Get(ctx, "hold", d.Authorization)
		if err != nil {
			return err
		}
		var held int64
		if hold != nil {
			held = hold["amount"].(int64)
			if _, err := tx.Delete(ctx, "hold", d.Authorization); err != nil {
				return err
			}
		}
		return tx.Add(ctx, "account", projection.Row{"id": id, "balance": -d.Amount, "held": -held, "updated": e.OccurredAt})
	}
	return nil
}
