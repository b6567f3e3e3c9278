package domain_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/rawtest"
)

func forBoth(t *testing.T, sqliteTest func(t *testing.T, s *rawevents.Store[*sql.Tx]), pgTest func(t *testing.T, s *rawevents.Store[pgx.Tx])) {
	t.Run("SQLite", func(t *testing.T) { t.Parallel(); sqliteTest(t, rawtest.SQLite(t)) })
	t.Run("Postgres", func(t *testing.T) { t.Parallel(); pgTest(t, rawtest.Postgres(t)) })
}

func TestTypes(t *testing.T) {
	t.Parallel()
	types := accountTypes()
	if err := domain.Register[Opened](types, "account.opened.v2", 1); err == nil {
		t.Error("a Go type registered twice was accepted")
	}
	if err := domain.Register[struct{ X int }](types, "account.opened", 1); err == nil {
		t.Error("a name registered twice was accepted")
	}
	if err := domain.Register[*Deposited](types, "p", 1); err == nil {
		t.Error("a pointer type was accepted")
	}
	if err := domain.Register[struct{ Y int }](types, "v0", 0); err == nil {
		t.Error("schema version 0 was accepted")
	}
	p, err := types.Encode(&Deposited{Amount: 5})
	if err != nil || p.Type != "account.deposited" || p.SchemaVersion != 1 || string(p.Data) != `{"amount":5}` {
		t.Fatalf("encode: %+v %v", p, err)
	}
	v, err := types.Decode(event.Event{Type: p.Type, SchemaVersion: 1, Data: p.Data})
	if err != nil || v != (Deposited{Amount: 5}) {
		t.Fatalf("decode: %#v %v", v, err)
	}
	if _, err := types.Encode(struct{ Z int }{}); !errors.Is(err, domain.ErrUnknownType) {
		t.Errorf("encoding an unregistered type: %v", err)
	}
	if _, err := types.Decode(event.Event{Type: "nope", Data: []byte("{}")}); !errors.Is(err, domain.ErrUnknownType) {
		t.Errorf("decoding an unregistered type: %v", err)
	}
	var sv *domain.SchemaVersionError
	if _, err := types.Decode(event.Event{Type: "account.deposited", SchemaVersion: 2, Data: []byte("{}")}); !errors.As(err, &sv) {
		t.Errorf("decoding another schema version: %v", err)
	}
	if got := types.Names(); !reflect.DeepEqual(got, []string{"account.deposited", "account.opened", "account.tagged", "account.withdrawn"}) {
		t.Errorf("names: %v", got)
	}
}

func TestConcurrentCommandsKeepInvariant(t *testing.T) {
	t.Parallel()
	forBoth(t, testConcurrentCommands[*sql.Tx], testConcurrentCommands[pgx.Tx])
}

// testConcurrentCommands sends 50 concurrent withdrawals of 10 to an
// account holding 250: exactly 25 succeed, the others are refused with the
// domain error, and the balance ends at 0, never below.
func testConcurrentCommands[TTx any](t *testing.T, store *rawevents.Store[TTx]) {
	ctx := context.Background()
	repo, err := domain.NewRepository(store, accountAggregate(7))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Execute(ctx, "a1", deposit(250), nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, refused int
	for range 50 {
		wg.Go(func() {
			_, err := repo.Execute(ctx, "a1", withdraw(10), &domain.ExecuteOpts{MaxConflicts: 200})
			mu.Lock()
			defer mu.Unlock()
			var rejected *domain.RejectedError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &rejected) && errors.Is(err, errInsufficient):
				refused++
			default:
				t.Errorf("withdraw: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 25 || refused != 25 {
		t.Fatalf("%d withdrawals succeeded and %d were refused, want 25 and 25", ok, refused)
	}
	loaded, err := repo.Load(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if loaded.State.Balance != 0 || loaded.Version != 26 {
		t.Fatalf("account after the race: %+v", loaded)
	}
	// Every prefix of the stream keeps the balance at or above 0.
	events, err := store.ReadStream(ctx, "account-a1", &rawevents.ReadStreamOpts{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	balance := 0
	for _, e := range events {
		v, err := repo.Aggregate().Types.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		balance = repo.Aggregate().Apply(Account{Balance: balance}, v).Balance
		if balance < 0 {
			t.Fatalf("the balance went to %d at version %d", balance, e.StreamVersion)
		}
	}
}

func TestSnapshotEquivalence(t *testing.T) {
	t.Parallel()
	forBoth(t, testSnapshotEquivalence[*sql.Tx], testSnapshotEquivalence[pgx.Tx])
}

// testSnapshotEquivalence is a property test: for random command
// sequences making 10,000 events, with a random snapshot interval, the
// state loaded from every stored snapshot equals the full replay up to
// that version, and the usual load equals the full replay.
func testSnapshotEquivalence[TTx any](t *testing.T, store *rawevents.Store[TTx]) {
	ctx := context.Background()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	every := 1 + rng.IntN(400)
	agg := accountAggregate(every)
	repo, err := domain.NewRepository(store, agg)
	if err != nil {
		t.Fatal(err)
	}
	id := "prop"
	total, checked, crossings := 0, 0, 0
	var mine Account // an independent fold of every decided event
	for total < 10_000 {
		n := 1 + rng.IntN(50)
		decide := func(s Account) ([]any, error) {
			var out []any
			for range n {
				switch rng.IntN(4) {
				case 0:
					out = append(out, Deposited{Amount: rng.IntN(100)})
				case 1:
					out = append(out, Withdrawn{Amount: rng.IntN(50)})
				case 2:
					out = append(out, Tagged{Key: fmt.Sprint("k", rng.IntN(20)), Value: fmt.Sprint(rng.Int())})
				default:
					out = append(out, Opened{Owner: fmt.Sprint("o", rng.IntN(5))})
				}
			}
			return out, nil
		}
		res, err := repo.Execute(ctx, id, decide, nil)
		if err != nil {
			t.Fatal(err)
		}
		if (total+len(res.Events))/every > total/every {
			crossings++ // this append must have saved a snapshot
		}
		total += len(res.Events)
		mine = agg.Fold(mine, res.Events...)
		snap, err := store.Driver().LatestSnapshot(ctx, &driver.LatestSnapshotParams{StreamID: agg.StreamID(id), SchemaVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		if snap == nil || snap.Version != res.Append.Version {
			continue
		}
		var got Account
		if err := json.Unmarshal(snap.Data, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, mine) {
			t.Fatalf("snapshot at v%d holds %+v, the events up to it give %+v", snap.Version, got, mine)
		}
		checked++
	}
	if checked != crossings {
		t.Fatalf("checked %d snapshots for %d events every %d, want one per append that crossed a multiple: %d", checked, total, every, crossings)
	}
	full, err := repo.LoadFromStart(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := repo.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.SnapshotVersion == 0 {
		t.Fatalf("no snapshot was used (every %d, %d events)", every, total)
	}
	if !reflect.DeepEqual(loaded.State, full.State) || !reflect.DeepEqual(full.State, mine) || loaded.Version != full.Version || full.Version != int64(total) {
		t.Fatalf("snapshot %d + replay gives %+v at v%d, full replay %+v at v%d, the fold %+v", loaded.SnapshotVersion, loaded.State, loaded.Version, full.State, full.Version, mine)
	}
	t.Logf("%d events, a snapshot every %d, %d snapshots checked", total, every, checked)
}

func TestDeriveID(t *testing.T) {
	t.Parallel()
	base := uuid.New()
	a, b := domain.SeedAt(41, base, "p/0"), domain.SeedAt(42, base, "p/0")
	if domain.DeriveID(a, 0) != domain.DeriveID(a, 0) {
		t.Fatal("not deterministic")
	}
	seen := map[uuid.UUID]bool{}
	for _, seed := range []uuid.UUID{a, b, domain.SeedAt(41, base, "p/1"), uuid.New()} {
		for n := range 3 {
			id := domain.DeriveID(seed, n)
			if seen[id] || id.Version() != 8 || id.Variant() != uuid.RFC4122 {
				t.Fatalf("id %s: seen %v, version %d, variant %v", id, seen[id], id.Version(), id.Variant())
			}
			seen[id] = true
		}
	}
	if x, y := domain.DeriveID(a, 5), domain.DeriveID(b, 0); bytes.Compare(x[:], y[:]) >= 0 {
		t.Fatalf("ids of position 41 (%s) do not sort before position 42's (%s)", x, y)
	}
	// Derived ids are stored: processing a raw event again after an
	// upgrade must derive the very same ones.
	seed := domain.SeedAt(123456, uuid.MustParse("6ba7b811-9dad-11d1-80b4-00c04fd430c8"), "counter")
	for n, want := range map[int]string{
		0: "00000001-e240-80aa-8199-71869412f629", 1: "00000001-e240-883b-85a1-f960f0cd1df3",
		7: "00000001-e240-8a64-bc7b-25da3bff817e", 12345: "00000001-e240-8879-b3ca-35ff8a553026",
	} {
		if got := domain.DeriveID(seed, n).String(); got != want {
			t.Errorf("DeriveID(%s, %d) = %s, want %s", seed, n, got, want)
		}
	}
	if got := seed.String(); got != "00000001-e240-58a3-be2e-582ab4be4c07" {
		t.Errorf("SeedAt = %s", got)
	}
}
