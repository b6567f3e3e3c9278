-- Deduplication keys. An event appended with a key (AppendIfAbsent with
-- StreamEvent.Key) keeps it in dedup_key, and no two events of a stream
-- share one. Raw events are keyed by their CloudEvents id, so their own
-- ids can be time-ordered: an id that is a hash of (source, id) dirties a
-- random page of the event-id index with every insert. Events appended
-- without a key have none (NULL), and the index leaves them out.
ALTER TABLE events ADD COLUMN dedup_key TEXT;

-- The raw events stored before this migration get their key, or a second
-- delivery of one of them would be stored again. A raw event is one in
-- stream "raw:" + source whose metadata points at itself as the origin
-- (source, id) and whose data is its CloudEvent, with the same source and
-- id. If two events of a stream claimed the same id, the first one keeps
-- it. Keys longer than the store takes (1,024 bytes) are left out.
--
-- Events are immutable, and the trigger that enforces it is dropped for
-- this one statement and made again below, in the same transaction: no
-- other writer can run in between, and if any statement fails, the
-- trigger was never gone.
DROP TRIGGER events_no_update;

UPDATE events
   SET dedup_key = metadata ->> '$.origin.id'
 WHERE position IN (
    SELECT min(position)
      FROM events
     WHERE stream_id = 'raw:' || (metadata ->> '$.origin.source')
       AND json_type(metadata, '$.origin.id') = 'text'
       AND json_type(data) = 'object'
       AND data ->> '$.source' = metadata ->> '$.origin.source'
       AND data ->> '$.id' = metadata ->> '$.origin.id'
       AND length(CAST(metadata ->> '$.origin.id' AS BLOB)) BETWEEN 1 AND 1024
     GROUP BY stream_id, metadata ->> '$.origin.id'
 );

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'rawevents: events are immutable');
END;

CREATE UNIQUE INDEX events_stream_dedup_key ON events (stream_id, dedup_key) WHERE dedup_key IS NOT NULL;
