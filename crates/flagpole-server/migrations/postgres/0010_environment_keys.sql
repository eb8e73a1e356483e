-- Environment keys that are URL segments (issue 19), as 0008 did for project keys.
--
-- An environment key is a path segment of URLs in the API
-- (`/api/v1/projects/{project}/environments/{env}/...`) and the dashboard, and is what
-- people copy into configuration next to an SDK key. Until now it could contain dots, so
-- `.` and `..` were accepted, and browsers and proxies collapse those segments: the
-- environment could not be reached. The API now refuses dots in environment keys, with the
-- same rule as project keys (`Problems::url_key`). Existing keys with a dot (the only
-- character that was ever accepted and is not any more) are rewritten here rather than
-- kept reachable through an escape hatch, for the reasons 0008 gives: SDKs are not
-- affected (an SDK key belongs to an environment by id, and snapshots do not carry the
-- key); only automation naming the old key in REST URLs must change, and the audit log
-- says to what.
--
-- New key, per project (keys are unique within one): dots become `-`, leading and trailing
-- `-` are trimmed (`.` and `..` trim to nothing and become `environment`); when that key is
-- taken, by an existing environment of the project or by another rewritten one with a lower
-- id, `-<id>` is appended (ids are unique). Each rename is an `environment.rename` audit
-- entry with the old and new key.
--
-- Flag history (`flag_version.state`) keeps each version's configs by environment key, and
-- a per-environment revert finds the old config by the current key: the keys in the
-- history of the renamed environments' projects are rewritten too, or every version
-- written before this migration would lose that environment. Should a version also hold an
-- environment deleted since under the new key, the renamed environment's config wins.
--
-- Expand only: an older server reads renamed keys like any other. During a rolling deploy
-- an older replica could still accept a dotted key, which this migration (run once) would
-- not rewrite: finish the rollout before creating environments (docs/operations.md).

create temporary table environment_key_fix as
with bad as (
  select id, project_id, key as old_key,
         coalesce(nullif(trim(both '-' from replace(key, '.', '-')), ''), 'environment') as base
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
select (extract(epoch from now()) * 1000)::bigint, 'system:migration-0010', 'environment.rename',
       project_id, id, 'environment', new_key, json_build_object('key', old_key)::text,
       json_build_object('key', new_key)::text,
       'environment keys must be URL segments (letters, digits, - and _); renamed by migration 0010'
from environment_key_fix;

update environment set key = f.new_key from environment_key_fix f where f.id = environment.id;

-- Only the versions that hold an old key are rewritten (jsonb also reformats the text).
update flag_version v
set state = jsonb_set(
      v.state::jsonb, '{environments}',
      (select jsonb_object_agg(coalesce(x.new_key, e.key), e.value order by x.new_key is not null)
       from jsonb_each(v.state::jsonb -> 'environments') e
       left join environment_key_fix x on x.project_id = f.project_id and x.old_key = e.key))::text
from flag f
where f.id = v.flag_id
  and exists (select 1 from environment_key_fix x
              where x.project_id = f.project_id
                and (v.state::jsonb -> 'environments' -> x.old_key) is not null);

drop table environment_key_fix;
