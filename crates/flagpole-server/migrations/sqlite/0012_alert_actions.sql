-- SQLite dialect of postgres/0012_alert_actions.sql (the reasons are written there).
--
-- Kill switches from alerts (issue 18): API tokens limited to one action (`scope`,
-- issued with the `fp_alert_` prefix older servers refuse), the mappings from
-- Alertmanager alerts to actions, and the firings already acted on (one row per mapping,
-- fingerprint and `startsAt`, so repeated notifications act once).
--
-- Expand only: an older server ignores the column and the tables.

alter table api_token add column scope text
  constraint api_token_scope check (scope in ('alerts:trigger'));

create table alert_mapping (
  id integer primary key autoincrement,
  project_id bigint not null references project (id) on delete cascade,
  -- The `alertname` label of the alerts it reacts to.
  alert_name text not null,
  -- More label matchers, all of which must hold: [{"label", "op", "value"}].
  matchers text not null default '[]',
  action text not null,
  flag_id bigint references flag (id) on delete cascade,
  environment_id bigint references environment (id) on delete cascade,
  version bigint not null default 1,
  created_by text not null,
  created_at bigint not null,
  updated_at bigint not null,
  last_fired text,
  constraint alert_mapping_flag_off check (
    action <> 'flag_off' or (flag_id is not null and environment_id is not null))
);
create index alert_mapping_project on alert_mapping (project_id);

create table alert_firing (
  mapping_id bigint not null references alert_mapping (id) on delete cascade,
  fingerprint text not null,
  -- The alert's `startsAt` (epoch ms).
  starts_at bigint not null,
  received_at bigint not null,
  constraint alert_firing_pkey primary key (mapping_id, fingerprint, starts_at)
);
