package cli

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
)

func TestSubscriptions(t *testing.T) {
	t.Parallel()

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedParked(t)

		got := lines(b.run(t, "subscriptions"))
		want := []string{
			"NAME    STATE    POSITION  HEAD  LAG  PARKED  PARTITIONS  OWNERS",
			"orders  stopped  4         4     0    2       2           -",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("subscriptions printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		var st rawevents.SubscriptionStatus
		if err := json.Unmarshal([]byte(b.run(t, "subs", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		if st.Name != "orders" || st.Position != 4 || st.Head != 4 || st.Lag != 0 || st.Parked != 2 || len(st.Partitions) != 2 {
			t.Errorf("subs --json = %+v", st)
		}
	})

	t.Run("Show", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedParked(t)
		b.run(t, "append", "--stream", "ok-3", "--type", "order.placed")

		got := lines(b.run(t, "subscriptions", "show", "orders"))
		if len(got) != 4 || got[0] != "orders: stopped, position 4, head 5, lag 1, parked 2" ||
			!strings.HasPrefix(got[1], "PARTITION  POSITION  LAG  OWNER  LEASE UNTIL  UPDATED") {
			t.Fatalf("subscriptions show printed %q", got)
		}
		for i, line := range got[2:] {
			f := strings.Fields(line)
			if len(f) != 6 || f[0] != []string{"0", "1"}[i] || f[1] != "4" || f[2] != "1" || f[3] != "-" || f[4] != "-" {
				t.Errorf("partition line %q", line)
			}
		}

		var st rawevents.SubscriptionStatus
		if err := json.Unmarshal([]byte(b.run(t, "subscriptions", "show", "--json", "orders")), &st); err != nil {
			t.Fatal(err)
		}
		if st.Name != "orders" || st.Head != 5 || st.Lag != 1 || len(st.Partitions) != 2 || st.Partitions[1].Partition != 1 {
			t.Errorf("show --json = %+v", st)
		}
	})

	t.Run("NoneYet", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.run(t, "migrate")
		if out := b.run(t, "subscriptions"); out != "no subscriptions have run\n" {
			t.Errorf("subscriptions printed %q", out)
		}
		if out := b.run(t, "subscriptions", "--json"); out != "" {
			t.Errorf("subscriptions --json printed %q", out)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedParked(t)
		before := b.state(t)
		for _, tt := range []struct {
			args    []string
			wantErr string
		}{
			{[]string{"subscriptions", "show", "nope"}, `subscription "nope" not found (see rawevents subscriptions)`},
			{[]string{"subscriptions", "show"}, "accepts 1 arg(s), received 0"},
			{[]string{"subscriptions", "list"}, `unknown command "list" for "rawevents subscriptions"`},
		} {
			res := b.execute(t.Context(), "", tt.args...)
			if res.err == nil || !strings.Contains(res.err.Error(), tt.wantErr) {
				t.Errorf("%v: error = %v, want it to contain %q", tt.args, res.err, tt.wantErr)
			}
			if res.stdout != "" {
				t.Errorf("%v printed %q", tt.args, res.stdout)
			}
		}
		if after := b.state(t); !reflect.DeepEqual(after, before) {
			t.Errorf("the store changed:\n before %+v\n after  %+v", before, after)
		}
	})
}

func TestOwners(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 19, 0, 0, 0, time.UTC)
	live, lapsed := now.Add(time.Second), now.Add(-time.Second)
	for _, tt := range []struct {
		name       string
		partitions []driver.PartitionStatus
		want       string
	}{
		{"Free", []driver.PartitionStatus{{Partition: 0}}, "-"},
		{"Lapsed", []driver.PartitionStatus{{Partition: 0, Owner: "a", LeaseUntil: lapsed}}, "-"},
		{"Counted", []driver.PartitionStatus{
			{Partition: 0, Owner: "b", LeaseUntil: live},
			{Partition: 1, Owner: "a", LeaseUntil: live},
			{Partition: 2, Owner: "b", LeaseUntil: live},
			{Partition: 3, Owner: "c", LeaseUntil: lapsed},
		}, "a (1), b (2)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := owners(tt.partitions, now); got != tt.want {
				t.Errorf("owners = %q, want %q", got, tt.want)
			}
		})
	}
}
