-- Streams: one row per stream, the unit of optimistic concurrency. An
-- append locks its stream's row, so writers to one stream queue while
-- writers to different streams run in parallel.
CREATE TABLE {schema}.streams (
    stream_id     text        PRIMARY KEY,
    version       bigint      NOT NULL,
    last_position bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- Global positions come from a sequence (no hot counter row). See
-- stable_position below for how readers avoid the sequence's in-flight
-- gaps.
CREATE SEQUENCE {schema}.events_position_seq AS bigint MINVALUE 1 CACHE 1;

CREATE TABLE {schema}.events (
    position       bigint      PRIMARY KEY,
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    stream_version bigint      NOT NULL,
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    data           json        NOT NULL, -- json, not jsonb: the bytes are kept exactly
    metadata       jsonb       NOT NULL,
    correlation_id text,
    causation_id   text,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_correlation_id_idx ON {schema}.events (correlation_id) WHERE correlation_id IS NOT NULL;

-- Immutability, enforced by the database and not only by our code.
CREATE FUNCTION {schema}.reject_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rawevents: events are immutable: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'RE003';
END
$$;

CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON {schema}.events
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.reject_event_change();

-- append_events appends a batch to one stream in one call, so an append is
-- one round trip. Errors are raised with our own SQLSTATEs, which the Go
-- driver translates: RE001 wrong expected version (DETAIL: the actual
-- version), RE002 event id reused (DETAIL: the id).
CREATE FUNCTION {schema}.append_events(
    p_stream_id       text,
    p_expected        bigint, -- -1 any, -2 stream exists, >= 0 exact
    p_ids             uuid[],
    p_types           text[],
    p_schema_versions integer[],
    p_data            json[],
    p_metadata        jsonb[],
    p_correlation_ids text[],
    p_causation_ids   text[],
    p_occurred_at     timestamptz[],
    p_recorded_at     timestamptz,
    p_notify          boolean,
    p_async_commit    boolean, -- the documented opt-in to synchronous_commit = off
    p_check_ids       boolean  -- false: skip the idempotency lookup (the caller retries with true on a conflict)
) RETURNS TABLE (
    r_duplicate   boolean,
    r_version     bigint,
    r_positions   bigint[],
    r_versions    bigint[],
    r_occurred_at timestamptz[],
    r_recorded_at timestamptz[]
) LANGUAGE plpgsql AS $$
DECLARE
    n         integer := coalesce(cardinality(p_ids), 0);
    n_found   integer;
    n_same    integer;
    in_order  boolean;
    reused    uuid;
    cur       bigint;
    low       bigint;
    pos       bigint[];
BEGIN
    -- Idempotency: the same ids with the same content, in the same order,
    -- return the original result whatever the expected version. A caller
    -- that can run the call again (not inside its own transaction) skips
    -- the lookup and asks again with it only when the append fails on an
    -- expected version or a used id: a repeat always fails on one of them.
    IF n > 0 AND p_check_ids THEN
        -- EXECUTE plans the lookup afresh each time: plpgsql would keep
        -- the plan of a connection's first call for its whole life, and a
        -- plan made while the table was small (a sequential scan) would
        -- get slower as the log grows.
        EXECUTE 'SELECT count(*),
               count(*) FILTER (WHERE e.stream_id = $1 AND e.type = u.type
                   AND e.schema_version = u.schema_version AND e.data::text = u.data::text
                   AND e.metadata = u.metadata),
               coalesce(max(e.stream_version - u.ord) = min(e.stream_version - u.ord), true),
               (array_agg(e.event_id ORDER BY u.ord))[1]
          FROM unnest($2, $3, $4, $5, $6) WITH ORDINALITY AS u(id, type, schema_version, data, metadata, ord)
          JOIN {schema}.events e ON e.event_id = u.id'
          INTO n_found, n_same, in_order, reused
          USING p_stream_id, p_ids, p_types, p_schema_versions, p_data, p_metadata;
        IF n_found = n AND n_same = n AND in_order THEN
            RETURN QUERY EXECUTE
                'SELECT true, max(e.stream_version), array_agg(e.position ORDER BY u.ord),
                        array_agg(e.stream_version ORDER BY u.ord), array_agg(e.occurred_at ORDER BY u.ord),
                        array_agg(e.recorded_at ORDER BY u.ord)
                   FROM unnest($1) WITH ORDINALITY AS u(id, ord)
                   JOIN {schema}.events e ON e.event_id = u.id'
                USING p_ids;
            RETURN;
        ELSIF n_found > 0 THEN
            RAISE EXCEPTION 'rawevents: event id % already used for different content', reused
                USING ERRCODE = 'RE002', DETAIL = reused::text;
        END IF;
    END IF;

    IF n = 0 THEN
        SELECT s.version INTO cur FROM {schema}.streams s WHERE s.stream_id = p_stream_id;
        cur := coalesce(cur, 0);
    ELSE
        -- Create the stream row if it is missing, then lock it: concurrent
        -- writers to this stream queue here and each sees the version the
        -- previous one committed.
        INSERT INTO {schema}.streams (stream_id, version, last_position, created_at, updated_at)
        VALUES (p_stream_id, 0, 0, p_recorded_at, p_recorded_at)
        ON CONFLICT DO NOTHING;
        SELECT s.version INTO cur FROM {schema}.streams s WHERE s.stream_id = p_stream_id FOR UPDATE;
    END IF;
    IF NOT (p_expected = -1 OR (p_expected = -2 AND cur > 0) OR p_expected = cur) THEN
        RAISE EXCEPTION 'rawevents: wrong expected version: stream % is at version %', p_stream_id, cur
            USING ERRCODE = 'RE001', DETAIL = cur::text;
    END IF;
    IF n = 0 THEN
        RETURN QUERY SELECT false, cur, '{}'::bigint[], '{}'::bigint[], '{}'::timestamptz[], '{}'::timestamptz[];
        RETURN;
    END IF;

    -- Acknowledged means durable: a session or server that turned
    -- synchronous commit off does not weaken appends, unless asked to.
    IF p_async_commit THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    ELSIF current_setting('synchronous_commit') = 'off' THEN
        PERFORM set_config('synchronous_commit', 'on', true);
    END IF;

    -- Announce the lowest position this transaction can be given, then
    -- take positions. See stable_position.
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END INTO low FROM {schema}.events_position_seq s;
    PERFORM pg_advisory_xact_lock_shared({lockbase} + low + 1);
    SELECT array_agg(p ORDER BY p) INTO pos
      FROM (SELECT nextval('{schema}.events_position_seq') AS p FROM generate_series(1, n)) AS allocated;

    INSERT INTO {schema}.events (position, event_id, stream_id, stream_version, type, schema_version, data, metadata,
                                 correlation_id, causation_id, occurred_at, recorded_at)
    SELECT pos[u.ord], u.id, p_stream_id, cur + u.ord, u.type, u.schema_version, u.data, u.metadata,
           u.correlation_id, u.causation_id, u.occurred_at, p_recorded_at
      FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata, p_correlation_ids, p_causation_ids, p_occurred_at)
           WITH ORDINALITY AS u(id, type, schema_version, data, metadata, correlation_id, causation_id, occurred_at, ord);

    UPDATE {schema}.streams SET version = cur + n, last_position = pos[n], updated_at = p_recorded_at
     WHERE streams.stream_id = p_stream_id;

    IF p_notify THEN
        PERFORM pg_notify('{channel}', pos[n]::text);
    END IF;

    RETURN QUERY SELECT false, cur + n, pos, (SELECT array_agg(cur + g ORDER BY g) FROM generate_series(1, n) AS g),
                        p_occurred_at, array_fill(p_recorded_at, ARRAY[n]);
END
$$;

-- stable_position returns the highest position a reader may pass: every
-- position at or below it is either committed (and visible to a query
-- that starts after this function returns) or will never be.
--
-- Each append, before it takes positions from the sequence, holds a shared
-- transaction-level advisory lock keyed by a lower bound of the positions
-- it will get (the sequence's last value + 1). Advisory locks are visible
-- to every session in pg_locks while the transaction runs and vanish when
-- it ends, committed or not. So the lowest such key is a lower bound of
-- every position still in flight, and anything below it is settled. The
-- sequence is read before pg_locks, so a writer that took a position below
-- the returned bound had announced itself before it was read.
CREATE FUNCTION {schema}.stable_position() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    allocated bigint;
    in_flight bigint;
BEGIN
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END INTO allocated FROM {schema}.events_position_seq s;
    SELECT min(((l.classid::bigint << 32) | l.objid::bigint) - {lockbase}) INTO in_flight
      FROM pg_catalog.pg_locks l
     WHERE l.locktype = 'advisory' AND l.objsubid = 1
       AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
       AND ((l.classid::bigint << 32) | l.objid::bigint) >> 40 = {lockns};
    IF in_flight IS NULL THEN
        RETURN allocated;
    END IF;
    RETURN least(allocated, in_flight - 1);
END
$$;
