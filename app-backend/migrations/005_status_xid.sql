-- Which transaction last changed what a person's relay should be told. A replica's status cache
-- reads the rows written by transactions that were not yet committed when it last looked (by
-- the snapshot's xmin), so it misses no late commit whatever the writers' clocks, and no longer
-- re-reads everything stamped in a 10-second look-back each second. Set by every writer of
-- status_changed_at; a new row takes its inserting transaction's.
ALTER TABLE quarantines ADD COLUMN status_xid bigint NOT NULL DEFAULT 0;
ALTER TABLE quarantines ALTER COLUMN status_xid SET DEFAULT pg_current_xact_id()::text::bigint;

CREATE INDEX quarantines_status_xid ON quarantines (status_xid);
DROP INDEX quarantines_status_changed;
