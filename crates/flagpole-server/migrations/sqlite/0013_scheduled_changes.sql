-- SQLite dialect of postgres/0013_scheduled_changes.sql (the reasons are written there).
--
-- Scheduled changes (issue 17): a flag's config change in one environment (the JSON a
-- REST edit takes), applied at `at` (epoch ms, UTC) if the flag is still at
-- `base_version`, else marked `conflict`. SQLite is one process: its one scheduler loop
-- claims rows inside `begin immediate`, which already excludes every other writer.
--
-- Expand only: an older server ignores the table.

create table scheduled_change (
  id integer primary key autoincrement,
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
