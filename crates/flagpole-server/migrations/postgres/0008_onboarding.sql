-- Project keys that are URL segments, and when each SDK key was last seen (issue 19).
--
-- 1. Project keys. A project key is a path segment of every project URL (API and
--    dashboard). Until now a key could contain dots, so `.` and `..` were accepted; browsers
--    and proxies collapse those segments, and signing in looped on a page that could not be
--    reached. The API now refuses dots in project keys. Existing keys with a dot (the only
--    character that was ever accepted and is not any more) are rewritten here rather than
--    kept reachable through an escape hatch: a key nobody can open in the dashboard helps
--    no one, and SDKs never name projects (SDK keys belong to environments), so no running
--    application notices. Only automation that names the old key in REST URLs must change,
--    and the audit log says to what.
--
--    New key: dots become `-`, leading and trailing `-` are trimmed (`.` and `..` trim to
--    nothing and become `project`); when that key is taken, by an existing project or by
--    another rewritten one with a lower id, `-<id>` is appended (ids are unique). Each
--    rename is recorded as a `project.rename` audit entry with the old and new key.
--
-- 2. `sdk_key.last_seen_at`: the last stream connection or OFREP call made with the key
--    (epoch ms), for the dashboard's "waiting for the first connection → connected". The
--    server keeps it in memory and writes it periodically, at most one write per key per
--    flush, never one per request.
--
-- Expand only: an older server ignores the column, and reads renamed keys like any other.
-- During a rolling deploy an older replica could still accept a dotted key, which this
-- migration (run once) would not rewrite: finish the rollout before creating projects
-- (docs/operations.md).

create temporary table project_key_fix as
with bad as (
  select id, key as old_key,
         coalesce(nullif(trim(both '-' from replace(key, '.', '-')), ''), 'project') as base
  from project
  where key like '%.%'
)
select b.id, b.old_key,
       case
         when exists (select 1 from project o where o.key = b.base)
           or exists (select 1 from bad e where e.base = b.base and e.id < b.id)
         then b.base || '-' || b.id
         else b.base
       end as new_key
from bad b;

insert into audit_event (at, actor, action, project_id, resource_type, resource_key, before, after, comment)
select (extract(epoch from now()) * 1000)::bigint, 'system:migration-0008', 'project.rename', id,
       'project', new_key, json_build_object('key', old_key)::text,
       json_build_object('key', new_key)::text,
       'project keys must be URL segments (letters, digits, - and _); renamed by migration 0008'
from project_key_fix;

update project set key = f.new_key from project_key_fix f where f.id = project.id;

drop table project_key_fix;

alter table sdk_key add column last_seen_at bigint;
