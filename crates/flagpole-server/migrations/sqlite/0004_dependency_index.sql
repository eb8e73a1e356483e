-- What each flag config and segment names (issue 14), so a write can find what depends on
-- the flag or segment it changes without reading the whole project. The Postgres folder's
-- 0004 explains the decisions; this is the same schema in SQLite's dialect.
--
-- Kept by triggers, in the transaction of the write that changes the document, so the
-- previous release (which does not know these tables) keeps them exact during a rolling
-- deploy. The keys are those flagpole-core's FlagConfig::prerequisite_keys / segment_keys
-- and Segment::segment_keys return.

create table flag_dependency (
  flag_id integer not null,
  environment_id integer not null,
  -- 'flag': a prerequisite; 'segment': an in_segment clause of a rule.
  kind text not null check (kind in ('flag', 'segment')),
  target_key text not null,
  primary key (flag_id, environment_id, kind, target_key),
  foreign key (flag_id, environment_id) references flag_config (flag_id, environment_id)
    on delete cascade
);
create index flag_dependency_target on flag_dependency (environment_id, kind, target_key);

create table segment_dependency (
  segment_id integer not null references segment (id) on delete cascade,
  project_id integer not null,
  target_key text not null,
  primary key (segment_id, target_key)
);
create index segment_dependency_target on segment_dependency (project_id, target_key);

-- SQLite triggers cannot call a shared function, so the two statements below appear once
-- per trigger and once more in the backfill; keep the copies identical.
create trigger flag_config_dependencies_insert after insert on flag_config
begin
  delete from flag_dependency
    where flag_id = new.flag_id and environment_id = new.environment_id;
  insert or ignore into flag_dependency (flag_id, environment_id, kind, target_key)
    select new.flag_id, new.environment_id, 'flag', json_extract(p.value, '$.flag')
    from json_each(new.config, '$.prerequisites') as p
    where json_type(p.value, '$.flag') = 'text';
  insert or ignore into flag_dependency (flag_id, environment_id, kind, target_key)
    select new.flag_id, new.environment_id, 'segment', v.value
    from json_each(new.config, '$.rules') as r,
      json_each(r.value, '$.clauses') as c,
      json_each(c.value, '$.values') as v
    where json_extract(c.value, '$.op') = 'in_segment' and v.type = 'text';
end;

create trigger flag_config_dependencies_update after update of config on flag_config
begin
  delete from flag_dependency
    where flag_id = new.flag_id and environment_id = new.environment_id;
  insert or ignore into flag_dependency (flag_id, environment_id, kind, target_key)
    select new.flag_id, new.environment_id, 'flag', json_extract(p.value, '$.flag')
    from json_each(new.config, '$.prerequisites') as p
    where json_type(p.value, '$.flag') = 'text';
  insert or ignore into flag_dependency (flag_id, environment_id, kind, target_key)
    select new.flag_id, new.environment_id, 'segment', v.value
    from json_each(new.config, '$.rules') as r,
      json_each(r.value, '$.clauses') as c,
      json_each(c.value, '$.values') as v
    where json_extract(c.value, '$.op') = 'in_segment' and v.type = 'text';
end;

create trigger segment_dependencies_insert after insert on segment
begin
  delete from segment_dependency where segment_id = new.id;
  insert or ignore into segment_dependency (segment_id, project_id, target_key)
    select new.id, new.project_id, v.value
    from json_each(new.definition, '$.rules') as r,
      json_each(r.value, '$.clauses') as c,
      json_each(c.value, '$.values') as v
    where json_extract(c.value, '$.op') = 'in_segment' and v.type = 'text';
end;

create trigger segment_dependencies_update after update of definition on segment
begin
  delete from segment_dependency where segment_id = new.id;
  insert or ignore into segment_dependency (segment_id, project_id, target_key)
    select new.id, new.project_id, v.value
    from json_each(new.definition, '$.rules') as r,
      json_each(r.value, '$.clauses') as c,
      json_each(c.value, '$.values') as v
    where json_extract(c.value, '$.op') = 'in_segment' and v.type = 'text';
end;

-- Backfill what was written before this migration.
insert or ignore into flag_dependency (flag_id, environment_id, kind, target_key)
  select c.flag_id, c.environment_id, 'flag', json_extract(p.value, '$.flag')
  from flag_config as c, json_each(c.config, '$.prerequisites') as p
  where json_type(p.value, '$.flag') = 'text';
insert or ignore into flag_dependency (flag_id, environment_id, kind, target_key)
  select c.flag_id, c.environment_id, 'segment', v.value
  from flag_config as c, json_each(c.config, '$.rules') as r,
    json_each(r.value, '$.clauses') as c2,
    json_each(c2.value, '$.values') as v
  where json_extract(c2.value, '$.op') = 'in_segment' and v.type = 'text';
insert or ignore into segment_dependency (segment_id, project_id, target_key)
  select s.id, s.project_id, v.value
  from segment as s, json_each(s.definition, '$.rules') as r,
    json_each(r.value, '$.clauses') as c,
    json_each(c.value, '$.values') as v
  where json_extract(c.value, '$.op') = 'in_segment' and v.type = 'text';
