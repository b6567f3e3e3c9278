package rawevents_test

import (
	"errors"
	"testing"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// TestValidateMetadata: metadata a backend cannot store (U+0000, invalid
// UTF-8) is refused, and the error names the first such field, the same
// one every time.
func TestValidateMetadata(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		meta  event.Metadata
		field string
	}{
		{event.Metadata{CorrelationID: "c", Actor: "a\x00", TraceState: "\xff"}, "metadata.actor"},
		{event.Metadata{Origin: &event.Origin{Source: "s", ID: "i\xff"}}, "metadata.origin.id"},
		{event.Metadata{Extra: map[string]string{"z": "\x00", "b": "\xff", "a": "fine", "c": "\x00"}}, "metadata.extra.b"},
		{event.Metadata{Extra: map[string]string{"k\x00": "v", "a": "\x00"}}, "metadata.extra"},
		{event.Metadata{CorrelationID: "c", Origin: &event.Origin{Source: "s", ID: "i"}, Extra: map[string]string{"k": "v"}}, ""},
	} {
		for range 20 { // maps iterate in a different order each time
			err := rawevents.Validate("s", event.Any, event.Proposed{Type: "t", Metadata: tt.meta})
			var ve *event.ValidationError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("%+v: %v", tt.meta, err)
			case tt.field != "" && (!errors.As(err, &ve) || ve.Field != tt.field):
				t.Fatalf("%+v: %v, want a ValidationError of %s", tt.meta, err, tt.field)
			}
		}
	}
}
