-- Subscription partitions: each one's checkpoint (every event up to
-- position is done) and the lease of the process that works it. The
-- checkpoint moves in the handler's transaction, only while the lease is
-- the committer's.
CREATE TABLE subscription_partitions (
    subscription TEXT    NOT NULL,
    partition    INTEGER NOT NULL,
    partitions   INTEGER NOT NULL, -- the count the subscription was set up with
    position     INTEGER NOT NULL DEFAULT 0,
    owner        TEXT,
    lease_until  INTEGER,          -- unix microseconds, UTC
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (subscription, partition)
) WITHOUT ROWID;

-- Live processes per subscription, so each takes its fair share.
CREATE TABLE subscription_members (
    subscription TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    seen_until   INTEGER NOT NULL, -- unix microseconds, UTC
    PRIMARY KEY (subscription, owner)
) WITHOUT ROWID;

-- Events a subscription's handler failed on after its retries.
CREATE TABLE parked_events (
    subscription TEXT    NOT NULL,
    position     INTEGER NOT NULL,
    partition    INTEGER NOT NULL,
    event_id     TEXT    NOT NULL,
    stream_id    TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    error        TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    parked_at    INTEGER NOT NULL, -- unix microseconds, UTC
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (subscription, position)
) WITHOUT ROWID;

CREATE INDEX parked_events_state ON parked_events (subscription, state, position);

-- Aggregate snapshots: a cache of a stream's state at a version, never the
-- truth. Rows may be deleted (pruned); events never are.
CREATE TABLE snapshots (
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL, -- the stream version the state includes
    schema_version INTEGER NOT NULL, -- the snapshot format, set by the code that wrote it
    data           BLOB    NOT NULL,
    created_at     INTEGER NOT NULL, -- unix microseconds, UTC
    PRIMARY KEY (stream_id, version)
) WITHOUT ROWID;
