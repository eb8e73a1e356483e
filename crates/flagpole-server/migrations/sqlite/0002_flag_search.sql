-- Flag search and tag filtering in SQL (issue 3).
--
-- Name and description live inside flag.definition (JSON text), which neither dialect can
-- search portably and efficiently. They are copied into plain columns written in the same
-- statement as the definition, and tags go into their own table so `tag = $1` is an exact,
-- indexable match rather than a LIKE over JSON. Additive only (expand): an older server
-- that does not know these columns keeps working, it just leaves them stale until the
-- next write, and the backfill below covers rows written before this migration.

alter table flag add column name text not null default '';
alter table flag add column description text not null default '';

create table flag_tag (
  flag_id bigint not null references flag (id) on delete cascade,
  tag text not null,
  primary key (flag_id, tag)
);
create index flag_tag_tag on flag_tag (tag);

update flag set
  name = coalesce(json_extract(definition, '$.name'), ''),
  description = coalesce(json_extract(definition, '$.description'), '');

insert or ignore into flag_tag (flag_id, tag)
  select f.id, t.value
  from flag f, json_each(f.definition, '$.tags') as t;
