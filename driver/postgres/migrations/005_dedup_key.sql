-- Deduplication keys. An event appended with a key (AppendIfAbsent with
-- StreamEvent.Key) keeps it in dedup_key, and no two events of a stream
-- share one. Raw events are keyed by their CloudEvents id, so their own
-- ids can be time-ordered: an id that is a hash of (source, id) dirties a
-- random page of the event-id index with every insert. Events appended
-- without a key have none (NULL), and the index leaves them out.
ALTER TABLE {schema}.events ADD COLUMN dedup_key text;

-- The raw events stored before this migration get their key, or a second
-- delivery of one of them would be stored again. A raw event is one in
-- stream 'raw:' || source whose metadata points at itself as the origin
-- (source, id) and whose data is its CloudEvent, with the same source and
-- id. If two events of a stream claimed the same id, the first one keeps
-- it. Keys longer than the store takes (1,024 bytes) are left out.
--
-- Events are immutable: the trigger that enforces it is disabled for this
-- one statement and enabled again below, in the same transaction. ALTER
-- TABLE holds the table's exclusive lock until the transaction ends, so
-- no other session writes or reads events in between, and if any
-- statement fails, the trigger was never off.
ALTER TABLE {schema}.events DISABLE TRIGGER events_immutable;

UPDATE {schema}.events e
   SET dedup_key = k.key
  FROM (SELECT min(r.position) AS position, r.metadata -> 'origin' ->> 'id' AS key
          FROM {schema}.events r
         WHERE r.stream_id = 'raw:' || (r.metadata -> 'origin' ->> 'source')
           AND jsonb_typeof(r.metadata -> 'origin' -> 'id') = 'string'
           AND json_typeof(r.data) = 'object'
           AND r.data ->> 'source' = r.metadata -> 'origin' ->> 'source'
           AND r.data ->> 'id' = r.metadata -> 'origin' ->> 'id'
           AND octet_length(r.metadata -> 'origin' ->> 'id') BETWEEN 1 AND 1024
         GROUP BY r.stream_id, r.metadata -> 'origin' ->> 'id') AS k
 WHERE e.position = k.position;

ALTER TABLE {schema}.events ENABLE TRIGGER events_immutable;

CREATE UNIQUE INDEX events_stream_dedup_key_idx ON {schema}.events (stream_id, dedup_key) WHERE dedup_key IS NOT NULL;

-- append_many takes the events' keys: the same function as in migration
-- 003, with one more array.
DROP FUNCTION {schema}.append_many(
    text[], bigint[], integer[], timestamptz[], uuid[], text[], integer[], json[], jsonb[], text[], text[],
    timestamptz[], boolean, boolean
);

CREATE FUNCTION {schema}.append_many(
    p_stream_ids      text[],        -- per append
    p_expected        bigint[],      -- per append: -1 any, -2 stream exists, >= 0 exact
    p_counts          integer[],     -- per append: how many of the events are its
    p_recorded_at     timestamptz[], -- per append
    p_ids             uuid[],        -- per event, appends one after the other
    p_types           text[],
    p_schema_versions integer[],
    p_data            json[],
    p_metadata        jsonb[],
    p_correlation_ids text[],
    p_causation_ids   text[],
    p_occurred_at     timestamptz[],
    p_keys            text[],        -- per event: its deduplication key, or NULL
    p_notify          boolean,
    p_async_commit    boolean        -- the documented opt-in to synchronous_commit = off
) RETURNS TABLE (
    r_versions    bigint[],      -- per append: the stream's version after it
    r_positions   bigint[],      -- per event
    r_occurred_at timestamptz[], -- per event
    r_recorded_at timestamptz[]  -- per append
) LANGUAGE plpgsql
-- The planner sees a thousand rows in every generate_series over an
-- append's events, so a call of a few hundred appends is costed high
-- enough to be JIT-compiled: hundreds of milliseconds of compiling for
-- statements that run in tens (see migration 004).
SET jit = off
AS $$
DECLARE
    m       integer := coalesce(cardinality(p_stream_ids), 0);
    n       integer := coalesce(cardinality(p_ids), 0);
    targets text[];
    base    bigint[];
    bad     integer;
    low     bigint;
    pos     bigint[];
BEGIN
    IF coalesce(cardinality(p_expected), 0) <> m OR coalesce(cardinality(p_counts), 0) <> m
       OR coalesce(cardinality(p_recorded_at), 0) <> m
       OR (SELECT coalesce(sum(c), 0) FROM unnest(p_counts) AS c) <> n THEN
        RAISE EXCEPTION 'rawevents: append_many: % appends of % events do not match their counts', m, n;
    END IF;

    -- The streams that get events, each once, in a fixed order: concurrent
    -- calls create and lock them in the same order and cannot deadlock.
    SELECT array_agg(DISTINCT u.stream_id ORDER BY u.stream_id) INTO targets
      FROM unnest(p_stream_ids, p_counts) AS u(stream_id, n_events)
     WHERE u.n_events > 0;
    IF targets IS NOT NULL THEN
        INSERT INTO {schema}.streams (stream_id, version, last_position, created_at, updated_at)
        SELECT DISTINCT ON (u.stream_id) u.stream_id, 0, 0, u.recorded_at, u.recorded_at
          FROM unnest(p_stream_ids, p_counts, p_recorded_at) WITH ORDINALITY AS u(stream_id, n_events, recorded_at, ord)
         WHERE u.n_events > 0
         ORDER BY u.stream_id, u.ord
        ON CONFLICT DO NOTHING;
        -- The statements that join the streams table run with EXECUTE, so
        -- they are planned for each call: plpgsql would keep a plan made
        -- while the table was small (a sequential scan of it) as it grows.
        EXECUTE 'SELECT count(*) FROM (
                     SELECT FROM {schema}.streams s WHERE s.stream_id = ANY ($1) ORDER BY s.stream_id FOR UPDATE
                 ) AS locked'
            USING targets;
    END IF;

    -- Each append's version before it: the stream's, plus the events of
    -- earlier appends to the same stream. The rows that get events are
    -- locked, so this statement reads the versions the lock returned. An
    -- append without events reads its stream without a lock, as
    -- append_events does.
    EXECUTE 'SELECT array_agg(b.version ORDER BY b.ord),
                    min(b.ord) FILTER (WHERE NOT (b.expected = -1 OR (b.expected = -2 AND b.version > 0) OR b.expected = b.version))
               FROM (SELECT u.ord, u.expected,
                            coalesce(s.version, 0) + coalesce(sum(u.n_events) OVER (PARTITION BY u.stream_id ORDER BY u.ord
                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS version
                       FROM unnest($1, $2, $3) WITH ORDINALITY AS u(stream_id, expected, n_events, ord)
                       LEFT JOIN {schema}.streams s ON s.stream_id = u.stream_id) AS b'
        INTO base, bad
        USING p_stream_ids, p_expected, p_counts;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'rawevents: wrong expected version: stream % is at version %', p_stream_ids[bad], base[bad]
            USING ERRCODE = 'RE001', DETAIL = (bad - 1)::text || ' ' || base[bad]::text;
    END IF;
    IF n = 0 THEN
        RETURN QUERY SELECT base, '{}'::bigint[], '{}'::timestamptz[], p_recorded_at;
        RETURN;
    END IF;

    -- Acknowledged means durable: a session or server that turned
    -- synchronous commit off does not weaken appends, unless asked to.
    IF p_async_commit THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    ELSIF current_setting('synchronous_commit') = 'off' THEN
        PERFORM set_config('synchronous_commit', 'on', true);
    END IF;

    -- Announce the lowest position this call can be given, then take all
    -- its positions. See stable_position.
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END INTO low FROM {schema}.events_position_seq s;
    PERFORM pg_advisory_xact_lock_shared({lockbase} + low + 1);
    SELECT array_agg(p ORDER BY p) INTO pos
      FROM (SELECT nextval('{schema}.events_position_seq') AS p FROM generate_series(1, n)) AS allocated;

    -- Event k (in the order of the arrays) gets the k-th position; the
    -- events of one append get consecutive stream versions.
    EXECUTE 'WITH appends AS (
        SELECT u.ord, u.stream_id, u.n_events, u.recorded_at,
               sum(u.n_events) OVER (ORDER BY u.ord) - u.n_events AS first
          FROM unnest($1, $2, $3) WITH ORDINALITY AS u(stream_id, n_events, recorded_at, ord)
    ), slots AS (
        SELECT a.first + g AS k, a.stream_id, $4[a.ord] + g AS stream_version, a.recorded_at
          FROM appends a CROSS JOIN LATERAL generate_series(1, a.n_events) AS g
    ), inserted AS (
        INSERT INTO {schema}.events (position, event_id, stream_id, dedup_key, stream_version, type, schema_version, data,
                                     metadata, correlation_id, causation_id, occurred_at, recorded_at)
        SELECT $5[e.k], e.id, s.stream_id, e.dedup_key, s.stream_version, e.type, e.schema_version, e.data,
               e.metadata, e.correlation_id, e.causation_id, e.occurred_at, s.recorded_at
          FROM unnest($6, $7, $8, $9, $10, $11, $12, $13, $14)
               WITH ORDINALITY AS e(id, type, schema_version, data, metadata, correlation_id, causation_id, occurred_at,
                                    dedup_key, k)
          JOIN slots s ON s.k = e.k
         ORDER BY e.k
        RETURNING position, stream_id, stream_version, recorded_at
    )
    UPDATE {schema}.streams st SET version = l.stream_version, last_position = l.position, updated_at = l.recorded_at
      FROM (SELECT DISTINCT ON (i.stream_id) i.stream_id, i.stream_version, i.position, i.recorded_at
              FROM inserted i ORDER BY i.stream_id, i.position DESC) AS l
     WHERE st.stream_id = l.stream_id'
        USING p_stream_ids, p_counts, p_recorded_at, base, pos,
              p_ids, p_types, p_schema_versions, p_data, p_metadata, p_correlation_ids, p_causation_ids, p_occurred_at,
              p_keys;

    IF p_notify THEN
        PERFORM pg_notify('{channel}', pos[n]::text);
    END IF;

    RETURN QUERY SELECT (SELECT array_agg(base[u.ord] + u.n_events ORDER BY u.ord)
                           FROM unnest(p_counts) WITH ORDINALITY AS u(n_events, ord)),
                        pos, p_occurred_at, p_recorded_at;
END
$$;
