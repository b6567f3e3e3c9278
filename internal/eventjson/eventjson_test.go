package eventjson_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/eventjson"
)

// TestMetadata: what the drivers store (encoding/json's output, and
// PostgreSQL's jsonb text with its spaces and its own member order) reads
// back as encoding/json reads it; broken metadata is an error.
func TestMetadata(t *testing.T) {
	full := event.Metadata{
		CorrelationID: "c-1", CausationID: "c-2", Actor: "ana", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		TraceState: "k=v", Origin: &event.Origin{Source: "s", ID: "é\u2028", Position: 42}, Extra: map[string]string{"a": "1", "b": ""},
	}
	stored, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		string(stored),
		`{}`,
		`{"extra": {"a": "1"}, "origin": {"id": "k1", "source": "gen", "position": 7}, "causation_id": "x", "correlation_id": "y"}`,
		`{"origin": null, "extra": null, "unknown": [1, {"x": 2}]}`,
	} {
		var want, got event.Metadata
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if err := eventjson.Metadata([]byte(in), &got); err != nil {
			t.Errorf("%s: %v", in, err)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", in, got, want)
		}
	}
	for _, in := range []string{``, `{`, `[]`, `{"origin": {"position": "7"}}`, `{"extra": {"a": 1}}`} {
		var got event.Metadata
		if err := eventjson.Metadata([]byte(in), &got); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

// TestEnvelope: the members a processor needs, the data as it is written.
func TestEnvelope(t *testing.T) {
	var env eventjson.Envelope
	in := `{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/json","data": {"k" : [1, 2]} ,"x":"y"}`
	if err := eventjson.DecodeEnvelope([]byte(in), &env); err != nil {
		t.Fatal(err)
	}
	if env.SpecVersion != "1.0" || env.ID != "1" || env.Source != "s" || env.DataContentType != "application/json" || string(env.Data) != `{"k" : [1, 2]}` {
		t.Errorf("got %+v (data %s)", env, env.Data)
	}
}
