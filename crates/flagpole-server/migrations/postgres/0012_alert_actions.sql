-- Kill switches from alerts (issue 18): API tokens limited to one action, the mappings
-- from Alertmanager alerts to what Flagpole does about them, and the firings already
-- acted on.
--
-- 1. `api_token.scope`: null for a token that uses the API as its role allows (every
--    token so far); `alerts:trigger` for a token that may only call a project's
--    Alertmanager webhook. Such tokens are issued with their own prefix, `fp_alert_`,
--    which older servers refuse (they accept only `fp_api_`): during a rolling deploy an
--    older replica answers 401 to it instead of treating it as the writer it is recorded
--    as, so the scope holds from the first replica that knows it.
--
-- 2. `alert_mapping`: per project, "an alert named A whose labels match M fires → do X".
--    The matchers are a JSON document (like flag configs: never queried by SQL). One kind
--    of action so far, `flag_off` (the kill switch of a flag in an environment); the
--    rollback of a release plan (issue 17) will add a kind and its own column. `action`
--    has no check on its values so that a kind can be added without rebuilding the table
--    on SQLite; the server validates what it writes. A mapping goes with its flag's
--    environment (cascade): a mapping that can no longer act is not kept. Flags are never
--    deleted, only archived, and a mapping to an archived flag records that it failed.
--    `last_fired` (JSON) is what the dashboard shows: when, which alert, what it did.
--
-- 3. `alert_firing`: one row per mapping and alert firing (Alertmanager's fingerprint
--    and the alert's `startsAt`), claimed in the transaction that acts on it. Alertmanager
--    repeats a firing alert's notification every `repeat_interval` and whenever its group
--    changes, and an HA pair sends each notification twice: the key makes all of those
--    act once. The same alert firing again after it resolved has a new `startsAt` and
--    acts again. Per mapping, so a mapping created during an incident acts on the next
--    repeat of an alert that fired before it existed.
--
-- Expand only: an older server ignores the column and the tables.

alter table api_token add column scope text
  constraint api_token_scope check (scope in ('alerts:trigger'));

create table alert_mapping (
  id bigint generated always as identity primary key,
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
