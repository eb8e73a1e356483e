-- Critical environments and the comment they can require (issue 19).
--
-- Until now the dashboard guessed which environments need confirmations from their key or
-- name containing "prod": `live` got none, `preprod` did. "Critical" becomes an explicit
-- setting of the environment, and a project can require a comment on every write that
-- touches one.
--
-- Booleans are 0/1 integers in both dialects, like times are epoch milliseconds: sqlx::Any
-- maps SQLite values by their runtime type (integer), so a boolean column would decode as
-- a bool on Postgres and fail to on SQLite.
--
-- Backfill: every environment the dashboard treated as production (key or name containing
-- "prod", the test it applied) becomes critical, so an upgrade never silently takes away
-- a confirmation people relied on. An admin clears the ones that are not (a `preprod`),
-- which is one click, whereas a production left unprotected would be found by a mistake.
-- No project requires comments yet: API clients that send none keep working until an
-- admin turns the requirement on.
--
-- Additive only (expand): an older server ignores both columns.

alter table environment add column critical bigint not null default 0
  constraint environment_critical_bool check (critical in (0, 1));
alter table project add column require_critical_comment bigint not null default 0
  constraint project_require_critical_comment_bool check (require_critical_comment in (0, 1));

update environment set critical = 1
  where lower(key) like '%prod%' or lower(name) like '%prod%';
