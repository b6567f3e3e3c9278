-- psql -h 127.0.0.1 -U postgres test -f bench/bbaf1b0/trigger.sql: 10,000 rows of 26 words
-- inserted, then upserted twice, into a table whose tsvector is a generated column (tg) and one
-- whose tsvector a BEFORE trigger sets (tt); the last count checks that both hold the same.
\timing on
drop table if exists tg, tt, src;
create temp table src as select 'item-'||g id, (select string_agg((array['ka','lo','mi','ne','ru','ta','vo','zi','pe','du','so','ba'])[1+(g*7+w*13)%12] || (array['ka','lo','mi','ne','ru','ta','vo','zi','pe','du','so','ba'])[1+(g*3+w*5)%12] || (array['ka','lo','mi','ne','ru','ta','vo','zi','pe','du','so','ba'])[1+(g+w*11)%12],' ') from generate_series(1,26) w) body from generate_series(1,10000) g;
create table tg (id text primary key, body text, _search tsvector generated always as (to_tsvector('english'::regconfig, coalesce(body,''))) stored);
create table tt (id text primary key, body text, _search tsvector);
create function tt_tsv() returns trigger language plpgsql as $f$ begin new._search := to_tsvector('english'::regconfig, coalesce(new.body,'')); return new; end $f$;
create trigger _search before insert or update of body on tt for each row execute function tt_tsv();
insert into tg select * from src;
insert into tt select * from src;
insert into tg select * from src on conflict (id) do update set body = excluded.body;
insert into tt select * from src on conflict (id) do update set body = excluded.body;
insert into tg select * from src on conflict (id) do update set body = excluded.body;
insert into tt select * from src on conflict (id) do update set body = excluded.body;
select count(*) from tt t join tg g using (id) where t._search = g._search;
drop table tg, tt; drop function tt_tsv();
