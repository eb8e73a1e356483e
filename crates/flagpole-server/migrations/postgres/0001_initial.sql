-- Flagpole schema, Postgres dialect. The SQLite folder holds the same schema in its
-- dialect; keep the two in step (same tables, columns, constraints and names).
--
-- Decisions:
-- * Times are epoch milliseconds (bigint) in both backends: one representation, and no
--   driver type-mapping differences through sqlx::Any.
-- * Flag definitions, per-environment configs and segments are JSON text holding
--   flagpole-core's wire types (model.rs). flagpole-core validates them; the database
--   stores documents. Rules are never queried by SQL, so columns per rule would only add
--   joins and migrations.
-- * Nothing is hard-deleted that an SDK or the audit trail may still refer to: flags are
--   archived (archived_at), keys and tokens revoked (revoked_at).
-- * Migrations are expand-then-contract (docs/operations.md): never edit an applied file.

create table project (
  id bigint generated always as identity primary key,
  key text not null unique,
  name text not null,
  description text not null default '',
  -- Optimistic-concurrency version of this row.
  version bigint not null default 1,
  created_at bigint not null,
  updated_at bigint not null
);

create table environment (
  id bigint generated always as identity primary key,
  project_id bigint not null references project (id) on delete cascade,
  key text not null,
  name text not null,
  description text not null default '',
  sort_order integer not null default 0,
  version bigint not null default 1,
  -- Version of what SDKs of this environment see: bumped in the same transaction as every
  -- write that changes a flag config, flag definition or segment of the project. Monotonic;
  -- the push protocol and OFREP ETags are built on it.
  data_version bigint not null default 0,
  created_at bigint not null,
  updated_at bigint not null,
  constraint environment_project_key unique (project_id, key)
);

create table flag (
  id bigint generated always as identity primary key,
  project_id bigint not null references project (id) on delete cascade,
  key text not null,
  -- flagpole_core::model::Flag as JSON.
  definition text not null,
  archived_at bigint,
  -- One version for the flag across environments: a change to any environment's config
  -- or to the definition bumps it. Coarser than per-environment, but a single number is
  -- what makes flag history and revert simple and conflicts impossible to miss.
  version bigint not null default 1,
  created_at bigint not null,
  updated_at bigint not null,
  constraint flag_project_key unique (project_id, key)
);

create table flag_config (
  flag_id bigint not null references flag (id) on delete cascade,
  environment_id bigint not null references environment (id) on delete cascade,
  -- flagpole_core::model::FlagConfig as JSON.
  config text not null,
  primary key (flag_id, environment_id)
);

-- Full state of a flag after each version: definition, archived flag and every
-- environment's config. History, diff and revert read only this table.
create table flag_version (
  flag_id bigint not null references flag (id) on delete cascade,
  version bigint not null,
  state text not null,
  actor text not null,
  comment text not null default '',
  created_at bigint not null,
  primary key (flag_id, version)
);

create table segment (
  id bigint generated always as identity primary key,
  project_id bigint not null references project (id) on delete cascade,
  key text not null,
  -- flagpole_core::model::Segment as JSON.
  definition text not null,
  version bigint not null default 1,
  created_at bigint not null,
  updated_at bigint not null,
  constraint segment_project_key unique (project_id, key)
);

-- What changed at each data_version of an environment, so a replica or SDK at version N
-- can fetch only the flags and segments changed since N.
create table env_change (
  environment_id bigint not null references environment (id) on delete cascade,
  data_version bigint not null,
  kind text not null check (kind in ('flag', 'segment')),
  key text not null,
  primary key (environment_id, data_version, kind, key)
);

create table audit_event (
  id bigint generated always as identity primary key,
  at bigint not null,
  actor text not null,
  action text not null,
  project_id bigint references project (id) on delete set null,
  environment_id bigint references environment (id) on delete set null,
  resource_type text not null,
  resource_key text not null,
  before text,
  after text,
  comment text not null default ''
);
create index audit_event_project_at on audit_event (project_id, at);
create index audit_event_resource on audit_event (resource_type, resource_key);

create table app_user (
  id bigint generated always as identity primary key,
  email text not null unique,
  name text not null default '',
  -- argon2id PHC string.
  password_hash text not null,
  role text not null check (role in ('reader', 'writer', 'admin')),
  -- NULL: all projects.
  project_id bigint references project (id) on delete cascade,
  version bigint not null default 1,
  created_at bigint not null,
  disabled_at bigint
);

create table api_token (
  id bigint generated always as identity primary key,
  name text not null,
  -- SHA-256 of the token. Tokens are 256-bit random, so a fast hash is enough; argon2 is
  -- for low-entropy passwords.
  token_hash text not null unique,
  -- First characters of the token, shown in lists so people can tell tokens apart.
  prefix text not null,
  role text not null check (role in ('reader', 'writer', 'admin')),
  project_id bigint references project (id) on delete cascade,
  created_by text not null,
  created_at bigint not null,
  revoked_at bigint,
  last_used_at bigint
);

create table sdk_key (
  id bigint generated always as identity primary key,
  environment_id bigint not null references environment (id) on delete cascade,
  name text not null,
  key_hash text not null unique,
  prefix text not null,
  created_by text not null,
  created_at bigint not null,
  revoked_at bigint
);

create table session (
  -- SHA-256 of the session cookie value.
  token_hash text primary key,
  user_id bigint not null references app_user (id) on delete cascade,
  csrf_token text not null,
  created_at bigint not null,
  expires_at bigint not null
);
-- Quoted: session_user is a reserved word (a built-in function) in Postgres.
create index "session_user" on session (user_id);
