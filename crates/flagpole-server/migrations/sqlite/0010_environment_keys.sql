-- SQLite dialect of postgres/0010_environment_keys.sql (the reasons are written there).
--
-- Environment keys that are URL segments (issue 19), as 0008 did for project keys: keys
-- with a dot are rewritten per project (dots to `-`, trimmed, `environment` when nothing is
-- left, `-<id>` when taken), each rename audited (`environment.rename`), and the keys in
-- the flag history (`flag_version.state`) of those projects follow, so reverting to a
-- version written before this migration still finds the environment.
--
-- Expand only. During a rolling deploy an older replica could still accept a dotted key,
-- which this migration (run once) would not rewrite (docs/operations.md).

create temporary table environment_key_fix as
with bad as (
  select id, project_id, key as old_key,
         coalesce(nullif(trim(replace(key, '.', '-'), '-'), ''), 'environment') as base
  from environment
  where key like '%.%'
)
select b.id, b.project_id, b.old_key,
       case
         when exists (select 1 from environment o where o.project_id = b.project_id and o.key = b.base)
           or exists (select 1 from bad e
                      where e.project_id = b.project_id and e.base = b.base and e.id < b.id)
         then b.base || '-' || b.id
         else b.base
       end as new_key
from bad b;

insert into audit_event (at, actor, action, project_id, environment_id, resource_type, resource_key,
                         before, after, comment)
select cast((julianday('now') - 2440587.5) * 86400000 as integer), 'system:migration-0010',
       'environment.rename', project_id, id, 'environment', new_key, json_object('key', old_key),
       json_object('key', new_key),
       'environment keys must be URL segments (letters, digits, - and _); renamed by migration 0010'
from environment_key_fix;

update environment set key = (select f.new_key from environment_key_fix f where f.id = environment.id)
  where id in (select id from environment_key_fix);

-- Should a version also hold an environment deleted since under the new key, the renamed
-- environment's config comes last and wins when the state is read.
update flag_version
set state = json_set(state, '$.environments', (
      select json_group_object(coalesce(x.new_key, e.key), json(e.value) order by x.new_key is not null)
      from json_each(flag_version.state, '$.environments') e
      left join environment_key_fix x
        on x.project_id = (select f.project_id from flag f where f.id = flag_version.flag_id)
       and x.old_key = e.key))
where exists (
  select 1
  from json_each(flag_version.state, '$.environments') e
  join environment_key_fix x on x.old_key = e.key
  join flag f on f.project_id = x.project_id
  where f.id = flag_version.flag_id);

drop table environment_key_fix;
