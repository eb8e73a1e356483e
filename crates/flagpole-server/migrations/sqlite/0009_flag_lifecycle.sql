-- SQLite dialect of postgres/0009_flag_lifecycle.sql (the reasons are written there).
--
-- Flag lifecycle (issue 15): what a flag is for, a mark that keeps it, and how long each
-- kind of flag is expected to live in a project. Whether a flag is "potentially stale" is
-- never stored: it depends on the clock and on telemetry, so the server decides it when it
-- answers (flagpole_core::lifecycle), from these columns, the configs and the counters.
--
-- `flag.flag_type` is a column, not a field of the stored definition (`flag.definition`):
-- the definition is what SDKs receive, and a flag's type changes nothing they evaluate.
-- Existing flags become release flags, the type a flag is created with when none is given.
-- The check lists the types this release knows; a release adding one relaxes it in its own
-- migration.
--
-- `flag.permanent` opts a flag out of every staleness rule. A 0/1 integer, like every
-- boolean here (migration 0005 says why).
--
-- `project.flag_lifetimes`: the project's overrides of the expected lifetimes, a JSON
-- object from type name to days (a positive integer) or null (never expires), for example
-- {"operational": 14, "release": null}. A type it does not name, and a null column, keep
-- the defaults (40, 40, 7 days, never, never), so changing a default in a later release
-- reaches every project that did not choose otherwise.
--
-- Additive only (expand): an older server ignores the three columns, and flags it creates
-- get the defaults.

alter table flag add column flag_type text not null default 'release'
  constraint flag_type_known
  check (flag_type in ('release', 'experiment', 'operational', 'kill_switch', 'permission'));
alter table flag add column permanent bigint not null default 0
  constraint flag_permanent_bool check (permanent in (0, 1));
alter table project add column flag_lifetimes text;
