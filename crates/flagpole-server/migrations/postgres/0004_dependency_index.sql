-- What each flag config and segment names (issue 14), so a write can find what depends on
-- the flag or segment it changes without reading the whole project.
--
-- A write validates the written flag or segment and its dependents: the flags whose
-- prerequisites reach it, the segments whose clauses reach it. Following references
-- forwards only needs the documents already loaded; following them backwards needs this
-- index. Rows are keyed by the name used in the document (a key, possibly dangling), not
-- by id, because that is what references are: a flag created under a key that archived
-- flags already name must find them.
--
-- Kept by triggers, in the transaction of the write that changes the document, rather
-- than by the server's code: a stale row would let an invalid write through, and during a
-- rolling deploy the previous release writes configs without knowing this table exists.
-- Triggers keep it exact whoever writes (and whatever future writer forgets). Additive
-- only (expand): the previous release ignores both tables.

create table flag_dependency (
  flag_id bigint not null,
  environment_id bigint not null,
  -- 'flag': a prerequisite; 'segment': an in_segment clause of a rule.
  kind text not null check (kind in ('flag', 'segment')),
  target_key text not null,
  primary key (flag_id, environment_id, kind, target_key),
  -- Gone with the config (a flag or environment deleted).
  foreign key (flag_id, environment_id) references flag_config (flag_id, environment_id)
    on delete cascade
);
-- Environments belong to one project, so (environment, kind, key) finds a project's
-- dependents of one key in one environment.
create index flag_dependency_target on flag_dependency (environment_id, kind, target_key);

create table segment_dependency (
  segment_id bigint not null references segment (id) on delete cascade,
  project_id bigint not null,
  target_key text not null,
  primary key (segment_id, target_key)
);
create index segment_dependency_target on segment_dependency (project_id, target_key);

-- The keys a stored FlagConfig (flagpole_core::model) names: prerequisites[].flag and the
-- string values of rules[].clauses[] whose op is in_segment. The same as
-- FlagConfig::prerequisite_keys / segment_keys in flagpole-core.
create function flag_config_references(config text)
returns table (kind text, target_key text)
language sql immutable as $$
  select 'flag', p ->> 'flag'
  from jsonb_array_elements(coalesce($1::jsonb -> 'prerequisites', '[]'::jsonb)) as p
  where jsonb_typeof(p -> 'flag') = 'string'
  union
  select 'segment', v #>> '{}'
  from jsonb_array_elements(coalesce($1::jsonb -> 'rules', '[]'::jsonb)) as r,
    jsonb_array_elements(coalesce(r -> 'clauses', '[]'::jsonb)) as c,
    jsonb_array_elements(coalesce(c -> 'values', '[]'::jsonb)) as v
  where c ->> 'op' = 'in_segment' and jsonb_typeof(v) = 'string'
$$;

-- The segment keys a stored Segment's rules name (Segment::segment_keys).
create function segment_references(definition text)
returns table (target_key text)
language sql immutable as $$
  select distinct v #>> '{}'
  from jsonb_array_elements(coalesce($1::jsonb -> 'rules', '[]'::jsonb)) as r,
    jsonb_array_elements(coalesce(r -> 'clauses', '[]'::jsonb)) as c,
    jsonb_array_elements(coalesce(c -> 'values', '[]'::jsonb)) as v
  where c ->> 'op' = 'in_segment' and jsonb_typeof(v) = 'string'
$$;

create function flag_dependency_refresh() returns trigger
language plpgsql as $$
begin
  delete from flag_dependency
    where flag_id = new.flag_id and environment_id = new.environment_id;
  insert into flag_dependency (flag_id, environment_id, kind, target_key)
    select new.flag_id, new.environment_id, r.kind, r.target_key
    from flag_config_references(new.config) as r;
  return null;
end
$$;

create trigger flag_config_dependencies after insert or update of config on flag_config
  for each row execute function flag_dependency_refresh();

create function segment_dependency_refresh() returns trigger
language plpgsql as $$
begin
  delete from segment_dependency where segment_id = new.id;
  insert into segment_dependency (segment_id, project_id, target_key)
    select new.id, new.project_id, r.target_key from segment_references(new.definition) as r;
  return null;
end
$$;

create trigger segment_dependencies after insert or update of definition on segment
  for each row execute function segment_dependency_refresh();

-- Backfill what was written before this migration.
insert into flag_dependency (flag_id, environment_id, kind, target_key)
  select c.flag_id, c.environment_id, r.kind, r.target_key
  from flag_config as c, flag_config_references(c.config) as r;

insert into segment_dependency (segment_id, project_id, target_key)
  select s.id, s.project_id, r.target_key
  from segment as s, segment_references(s.definition) as r;
