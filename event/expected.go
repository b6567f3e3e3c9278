package event

import (
	"fmt"
	"strconv"
)

// ExpectedVersion is the optimistic-concurrency condition of an append: the
// stream version the writer based its decision on. Values of 0 and above are
// exact versions (0 meaning the stream has no events yet); the negative
// values are the named rules below.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version.
	Any ExpectedVersion = -1
	// StreamExists appends only to a stream that has at least one event.
	StreamExists ExpectedVersion = -2
	// NoStream appends only to a stream that has no events yet. It equals
	// Exact(0).
	NoStream ExpectedVersion = 0
)

// Exact expects the stream to be at version v.
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// Allows reports whether a stream at version current satisfies e.
func (e ExpectedVersion) Allows(current int64) bool {
	switch {
	case e == Any:
		return true
	case e == StreamExists:
		return current > 0
	default:
		return int64(e) == current
	}
}

// Valid reports whether e is one of the rules or an exact version.
func (e ExpectedVersion) Valid() bool { return e >= StreamExists }

// String returns the form ParseExpectedVersion reads.
func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "any"
	case StreamExists:
		return "exists"
	case NoStream:
		return "none"
	default:
		return strconv.FormatInt(int64(e), 10)
	}
}

// ParseExpectedVersion reads "any", "none", "exists" or a version number.
func ParseExpectedVersion(s string) (ExpectedVersion, error) {
	switch s {
	case "any", "":
		return Any, nil
	case "none":
		return NoStream, nil
	case "exists":
		return StreamExists, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("expected version %q: want any, none, exists or a version number >= 0", s)
	}
	return Exact(v), nil
}
