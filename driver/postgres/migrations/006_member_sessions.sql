-- The session that vouches for a member of a subscription: the backend of
-- its process's listener connection, named by pid and start time (a pid
-- alone is reused). When the process ends, however it ends, the kernel
-- closes its sockets and the backend goes; a claim by another member then
-- frees the dead one's partitions at once instead of when its lease runs
-- out. (A client machine that crashes, or a network that splits, leaves
-- the backend until the server's TCP keepalive notices: the lease covers
-- that.) A member without a session (its listener had not connected yet,
-- a role that may not read pg_stat_activity, or a process of an older
-- release) keeps the lease rule.
ALTER TABLE {schema}.subscription_members
    ADD COLUMN session_pid   integer,
    ADD COLUMN session_start timestamptz;
