-- Subscription partitions: each one's checkpoint (every event up to
-- position is done) and the lease of the process that works it. The
-- checkpoint moves in the handler's transaction, only while the lease is
-- the committer's; a takeover and a checkpoint update the same row, so
-- they cannot both win.
CREATE TABLE {schema}.subscription_partitions (
    subscription text        NOT NULL,
    partition    integer     NOT NULL,
    partitions   integer     NOT NULL, -- the count the subscription was set up with
    position     bigint      NOT NULL DEFAULT 0,
    owner        text,
    lease_until  timestamptz,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (subscription, partition)
);

-- Live processes per subscription, so each takes its fair share.
CREATE TABLE {schema}.subscription_members (
    subscription text        NOT NULL,
    owner        text        NOT NULL,
    seen_until   timestamptz NOT NULL,
    PRIMARY KEY (subscription, owner)
);

-- Events a subscription's handler failed on after its retries.
CREATE TABLE {schema}.parked_events (
    subscription text        NOT NULL,
    position     bigint      NOT NULL,
    partition    integer     NOT NULL,
    event_id     uuid        NOT NULL,
    stream_id    text        NOT NULL,
    type         text        NOT NULL,
    attempts     integer     NOT NULL,
    error        text        NOT NULL,
    state        text        NOT NULL,
    parked_at    timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (subscription, position)
);

CREATE INDEX parked_events_state ON {schema}.parked_events (subscription, state, position);

-- Aggregate snapshots: a cache of a stream's state at a version, never the
-- truth. Rows may be deleted (pruned); events never are.
CREATE TABLE {schema}.snapshots (
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL, -- the stream version the state includes
    schema_version integer     NOT NULL, -- the snapshot format, set by the code that wrote it
    data           bytea       NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (stream_id, version)
);
