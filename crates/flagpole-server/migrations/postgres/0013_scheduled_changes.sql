-- Scheduled changes (issue 17, "Scheduler"): a flag's config change in one environment,
-- made by a person now and applied by the server at a later time.
--
-- `change` is the JSON a REST edit of that environment takes, without its version:
-- `{"config": {...}}` (the whole config, as `PUT .../environments/{env}`) or
-- `{"enabled": bool}` (the kill switch). A document, like flag configs: never queried by
-- SQL, so a new kind of change needs no migration.
--
-- `at` is epoch milliseconds (UTC), the database's one time representation. `base_version`
-- is the flag's version when the change was scheduled (or last rebased): the scheduler
-- applies the change with it as the expected version, so a flag changed by anyone in the
-- meantime is not overwritten; the change is marked `conflict` for a person to rebase or
-- cancel.
--
-- States: `scheduled` (waiting), `applied` (written by `applied_by`, at `applied_at`,
-- giving flag version `applied_version`), `conflict` (not applied: the flag moved on),
-- `failed` (not applied: the write refused it, `error` says why), `cancelled` (by
-- `cancelled_by`). Only `scheduled` rows are ever claimed.
--
-- Exactly once across replicas: a replica claims the earliest due row with
-- `for update skip locked` and applies, records and commits in that one transaction; a
-- replica killed mid-way loses its connection, Postgres rolls its transaction back and
-- releases the row for the next claimer. The partial index keeps the claim and the
-- "next due" query on the waiting rows only, however many applied rows pile up.
--
-- Expand only: an older server ignores the table (and applies nothing from it).

create table scheduled_change (
  id bigint generated always as identity primary key,
  project_id bigint not null references project (id) on delete cascade,
  environment_id bigint not null references environment (id) on delete cascade,
  flag_id bigint not null references flag (id) on delete cascade,
  change text not null,
  comment text not null default '',
  at bigint not null,
  base_version bigint not null,
  state text not null default 'scheduled'
    constraint scheduled_change_state
    check (state in ('scheduled', 'applied', 'conflict', 'cancelled', 'failed')),
  scheduled_by text not null,
  created_at bigint not null,
  updated_at bigint not null,
  applied_at bigint,
  applied_by text,
  applied_version bigint,
  cancelled_by text,
  error text
);
create index scheduled_change_due on scheduled_change (at, id) where state = 'scheduled';
create index scheduled_change_project on scheduled_change (project_id, at);
create index scheduled_change_flag on scheduled_change (flag_id, at);
