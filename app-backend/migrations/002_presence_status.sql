-- When what the person's relay should be told last changed (presence, alert, enable, end), so
-- every replica can refresh its in-memory status cache with the rows changed since it last looked.
ALTER TABLE quarantines ADD COLUMN status_changed_at bigint NOT NULL DEFAULT 0;

CREATE INDEX quarantines_status_changed ON quarantines (status_changed_at);
