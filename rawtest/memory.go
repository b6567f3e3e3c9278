package rawtest

import (
	"testing"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/memory"
)

// Memory returns a store on a fresh in-memory driver: the fastest store
// for a unit test, with nothing on disk and no server. It passes the same
// conformance suite as the others; see package memory for how it differs.
func Memory(t testing.TB) *rawevents.Store[*memory.Tx] {
	t.Helper()
	d, err := memory.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return open(t, d)
}
