package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// AppendOpts are the options of "rawevents append", which appends one event
// to a stream.
type AppendOpts struct {
	GlobalOpts
	// Stream is the id of the stream to append to.
	Stream string
	// Type is the event's type.
	Type string
	// Data is the payload: literal JSON, "@path" to read a file, or "-" to
	// read Stdin. Empty means JSON null.
	Data string
	// Expect is the expected version: any, none, exists or a number.
	Expect string
	// ID is the event id, for idempotent retries; empty generates one.
	ID string
	// CorrelationID ties the event to the business flow it is part of.
	CorrelationID string
	// CausationID is the id of the event or command that caused this one.
	CausationID string
	// Actor is the user or service the event is written for.
	Actor string
	// SchemaVersion is the version of the payload's schema.
	SchemaVersion int
	// Stdin is read when Data is "-".
	Stdin io.Reader

	// Set by Validate.
	expected event.ExpectedVersion
	id       uuid.UUID
	data     json.RawMessage
}

func newAppendCommand(globals *GlobalOpts) *cobra.Command {
	opts := &AppendOpts{}
	cmd := &cobra.Command{
		Use:   "append --stream ID --type TYPE [--data JSON|@FILE|-]",
		Short: "Append one event to a stream",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.GlobalOpts = *globals
			opts.Stdin = cmd.InOrStdin()
			return run(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Stream, "stream", "", "stream id (required)")
	f.StringVar(&opts.Type, "type", "", "event type (required)")
	f.StringVar(&opts.Data, "data", "", "payload: JSON, @FILE to read a file, or - to read stdin (default null)")
	f.StringVar(&opts.Expect, "expect", "any", "expected stream version: any, none, exists or a version number")
	f.StringVar(&opts.ID, "id", "", "event id (a UUID); repeat an append with the same id to retry it safely")
	f.StringVar(&opts.CorrelationID, "correlation-id", "", "correlation id metadata")
	f.StringVar(&opts.CausationID, "causation-id", "", "causation id metadata")
	f.StringVar(&opts.Actor, "actor", "", "actor metadata")
	f.IntVar(&opts.SchemaVersion, "schema-version", 1, "version of the payload's schema")
	return cmd
}

// Validate checks the flags and loads the payload (reading the file or
// stdin), so that nothing is opened or stored when any of them is wrong. It
// reports every problem at once.
func (o *AppendOpts) Validate() error {
	errs := []error{o.GlobalOpts.validate()}
	if o.Stream == "" {
		errs = append(errs, errors.New("--stream is required"))
	}
	if o.Type == "" {
		errs = append(errs, errors.New("--type is required"))
	}
	var err error
	if o.expected, err = event.ParseExpectedVersion(o.Expect); err != nil {
		errs = append(errs, fmt.Errorf("--expect: %w", err))
	}
	if o.ID != "" {
		if o.id, err = uuid.Parse(o.ID); err != nil {
			errs = append(errs, fmt.Errorf("--id: %w", err))
		} else if o.id == uuid.Nil {
			errs = append(errs, errors.New("--id must not be the nil UUID"))
		}
	}
	if o.SchemaVersion < 1 {
		errs = append(errs, errors.New("--schema-version must be at least 1"))
	}
	if o.data, err = o.loadData(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return rawevents.Validate(o.Stream, o.expected, o.proposed())
}

// proposed is the event the flags describe.
func (o *AppendOpts) proposed() event.Proposed {
	return event.Proposed{
		ID:            o.id,
		Type:          o.Type,
		SchemaVersion: o.SchemaVersion,
		Data:          o.data,
		Metadata: event.Metadata{
			CorrelationID: o.CorrelationID,
			CausationID:   o.CausationID,
			Actor:         o.Actor,
		},
	}
}

// loadData returns the payload named by Data, checked to be valid JSON.
func (o *AppendOpts) loadData() (json.RawMessage, error) {
	var data []byte
	var err error
	switch {
	case o.Data == "":
		return nil, nil
	case o.Data == "-":
		if o.Stdin == nil {
			return nil, errors.New("--data -: no standard input")
		}
		if data, err = io.ReadAll(o.Stdin); err != nil {
			return nil, fmt.Errorf("--data -: read standard input: %w", err)
		}
	case strings.HasPrefix(o.Data, "@"):
		if data, err = os.ReadFile(o.Data[1:]); err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
	default:
		data = []byte(o.Data)
	}
	var check json.RawMessage
	if err := json.Unmarshal(data, &check); err != nil {
		return nil, fmt.Errorf("--data is not valid JSON: %w", err)
	}
	return data, nil
}

// Run appends the event and prints where it was stored.
func (o *AppendOpts) Run(ctx context.Context, out io.Writer) error {
	store, _, err := openStore(ctx, o.Store, true)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // the append is committed or failed already
	res, err := store.Append(ctx, o.Stream, o.expected, o.proposed())
	if err != nil {
		return err
	}
	if o.JSON {
		for _, e := range res.Events {
			if err := printEvent(out, e, true, false); err != nil {
				return err
			}
		}
		return nil
	}
	duplicate := ""
	if res.Duplicate {
		duplicate = " (duplicate)"
	}
	_, err = fmt.Fprintf(out, "appended %s v%d at position %d%s\n", res.StreamID, res.Version, res.LastPosition(), duplicate)
	return err
}
