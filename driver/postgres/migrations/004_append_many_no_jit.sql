-- append_many's planner sees a thousand rows in every generate_series
-- over an append's events, so a call of a few hundred appends is costed
-- high enough for PostgreSQL to JIT-compile its statements: hundreds of
-- milliseconds of compiling for a statement that runs in tens. The
-- statements are simple and short; they never gain from JIT.
ALTER FUNCTION {schema}.append_many(
    text[], bigint[], integer[], timestamptz[], uuid[], text[], integer[], json[], jsonb[], text[], text[],
    timestamptz[], boolean, boolean
) SET jit = off;
