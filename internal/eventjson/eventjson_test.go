package eventjson_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

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

// upper decodes a JSON string upper-cased: a user's UnmarshalJSON.
type upper string

func (u *upper) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*u = upper(strings.ToUpper(s))
	return nil
}

// payload has what users' payload types hold.
type payload struct {
	ID      string            `json:"id"`
	Amount  int64             `json:"amount,string"`
	Share   float64           `json:"share"`
	At      time.Time         `json:"at"`
	Tags    []string          `json:"tags"`
	Extra   map[string]any    `json:"extra"`
	Labels  map[string]string `json:"labels,omitempty"`
	Name    upper             `json:"name"`
	Raw     json.RawMessage   `json:"raw"`
	Ptr     *int              `json:"ptr"`
	Skipped string            `json:"-"`
	Inner   struct {
		N int `json:"n"`
	} `json:"inner"`
}

// TestPayload: a user's payload decodes as encoding/json decodes it, by
// its rules (names without regard to case, the last of duplicate names,
// UnmarshalJSON, the string option, unknown names ignored), and fails
// where it fails.
func TestPayload(t *testing.T) {
	for _, in := range []string{
		`{"id":"a","amount":"12","share":0.5,"at":"2026-11-26T10:00:00.123456Z","tags":["x","y"],"extra":{"k":[1,"2",null]},"name":"ann","raw":{"z" : 1},"ptr":3,"inner":{"n":4}}`,
		`{"ID":"b","AMOUNT":"7","Inner":{"N":5},"unknown":{"deep":[1,2]}}`,
		`{"id":"first","id":"last","labels":{"a":"1"}}`,
		`{"id":null,"tags":null,"ptr":null,"-":"x","Skipped":"y"}`,
		`{"extra":{"big":12345678901234567890,"f":1e300}}`,
		"{\"id\":\"\u00e9\u2028\\ud83d\\ude00\"}",
		`{}`,
	} {
		var want, got payload
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: encoding/json: %v", in, err)
		}
		if err := eventjson.Payload([]byte(in), &got); err != nil {
			t.Errorf("%s: %v", in, err)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", in, got, want)
		}
	}
	for _, in := range []string{``, `{`, `[]`, `{"amount":12}`, `{"id":1}`, `{"ptr":"x"}`, `{"at":"yesterday"}`, `{"id":"a"} x`} {
		var want, got payload
		if json.Unmarshal([]byte(in), &want) == nil {
			t.Fatalf("%s: encoding/json took it", in)
		}
		if err := eventjson.Payload([]byte(in), &got); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}
