-- Where each environment's change history starts (issue 4).
--
-- env_change gains rows with every write and patches only ever need the recent ones: a
-- replica's hub is at most seconds behind its database. The server prunes each
-- environment's history to its last versions (src/push/history.rs) and records here the
-- version it now starts after: env_change holds every change after `history_from`, and a
-- hub holding an older version is sent the whole environment as one patch instead.
-- Additive only: an older server ignores the column and never prunes.

alter table environment add column history_from bigint not null default 0;
