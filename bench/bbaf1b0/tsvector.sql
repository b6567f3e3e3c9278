-- psql -h 127.0.0.1 -U postgres test -f bench/bbaf1b0/tsvector.sql: to_tsvector of 10,000
-- rows of 6 + 20 three-syllable words, twice, beside reading the same text.
\timing on
create temp table tsy as select 'item-'||g id, (select string_agg((array['ka','lo','mi','ne','ru','ta','vo','zi','pe','du','so','ba'])[1+(g*7+w*13)%12] || (array['ka','lo','mi','ne','ru','ta','vo','zi','pe','du','so','ba'])[1+(g*3+w*5)%12] || (array['ka','lo','mi','ne','ru','ta','vo','zi','pe','du','so','ba'])[1+(g+w*11)%12],' ') from generate_series(1,6) w) title, (select string_agg((array['ka','lo','mi','ne','ru','ta','vo','zi','pe','du','so','ba'])[1+(g*5+w*7)%12] || (array['ka','lo','mi','ne','ru','ta','vo','zi','pe','du','so','ba'])[1+(g*11+w*3)%12]|| (array['ka','lo','mi','ne','ru','ta','vo','zi','pe','du','so','ba'])[1+(g+w)%12],' ') from generate_series(1,20) w) body from generate_series(1,10000) g;
select title, body from tsy limit 1;
select sum(length(to_tsvector('english'::regconfig, coalesce(title,'')||' '||coalesce(body,''))::text)) from tsy;
select sum(length(to_tsvector('english'::regconfig, coalesce(title,'')||' '||coalesce(body,''))::text)) from tsy;
select sum(length(title||body)) from tsy;
