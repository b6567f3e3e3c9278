-- Streams: one row per stream, the unit of optimistic concurrency.
CREATE TABLE streams (
    stream_id     TEXT    PRIMARY KEY,
    version       INTEGER NOT NULL,
    last_position INTEGER NOT NULL,
    created_at    INTEGER NOT NULL, -- unix microseconds, UTC
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- Events: the log. position is the rowid; SQLite admits one writer at a
-- time, so positions are assigned in commit order and the log has no
-- in-flight gaps.
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    event_id       TEXT    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL, -- JSON, byte for byte as appended
    metadata       TEXT    NOT NULL, -- JSON
    correlation_id TEXT,
    causation_id   TEXT,
    occurred_at    INTEGER NOT NULL, -- unix microseconds, UTC
    recorded_at    INTEGER NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_correlation_id ON events (correlation_id) WHERE correlation_id IS NOT NULL;

-- Immutability, enforced by the database and not only by our code.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'rawevents: events are immutable');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'rawevents: events are immutable');
END;
