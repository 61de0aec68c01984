-- Alert lifecycle: a gap is PROVISIONAL during a grace period (the person is warned, police is
-- not told), then CONFIRMED, or CLEARED / RESOLVED_BY_EVIDENCE when presence is proven. Beacon-side
-- causes (BEACON_FAULT, SUSPECTED_SPOOFING) keep one open alert per quarantine and kind. Authorised
-- absences suspend the watchdog. Still no personal data: an absence is two times, nothing else.

ALTER TABLE alerts ADD COLUMN status text;
ALTER TABLE alerts ADD COLUMN queue text CHECK (queue IN ('violation', 'maintenance'));
ALTER TABLE alerts ADD COLUMN occurrences integer NOT NULL DEFAULT 1;
ALTER TABLE alerts ADD COLUMN updated_at bigint;
-- When a gap's confirmation was withheld because the person's relay had gone silent (a flat or
-- switched-off phone, or no network): silence proves nothing either way, late evidence may follow.
ALTER TABLE alerts ADD COLUMN held_at bigint;

UPDATE alerts SET status = CASE WHEN closed_at IS NULL THEN 'confirmed' ELSE 'resolved_by_evidence' END,
                  queue = 'violation'
 WHERE kind = 'NO_PRESENCE';
ALTER TABLE alerts ADD CONSTRAINT alerts_gap_status CHECK (
  (kind = 'NO_PRESENCE') = (status IS NOT NULL)
  AND (status IS NULL OR status IN ('provisional', 'confirmed', 'cleared', 'resolved_by_evidence'))
);
CREATE INDEX alerts_gap ON alerts (quarantine_id, created_at) WHERE kind = 'NO_PRESENCE';

ALTER TABLE quarantines DROP COLUMN drift_alerted;
ALTER TABLE quarantines DROP COLUMN low_battery_alerted;
-- The open BEACON_FAULT and its reasons (comma-separated), the open SUSPECTED_SPOOFING and the
-- invalid-token count it last reported, the run of invalid tokens since the last valid one, and
-- when a signed clock-not-set token last arrived.
ALTER TABLE quarantines ADD COLUMN fault_alert_id uuid;
ALTER TABLE quarantines ADD COLUMN fault_reasons text NOT NULL DEFAULT '';
ALTER TABLE quarantines ADD COLUMN spoof_alert_id uuid;
ALTER TABLE quarantines ADD COLUMN spoof_reported integer NOT NULL DEFAULT 0;
ALTER TABLE quarantines ADD COLUMN invalid_streak integer NOT NULL DEFAULT 0;
ALTER TABLE quarantines ADD COLUMN invalid_since bigint;
ALTER TABLE quarantines ADD COLUMN clock_not_set_at bigint;
-- When the person's relay last sent any presence request (it sends one every cycle, tokens or not).
ALTER TABLE quarantines ADD COLUMN last_request_at bigint;
-- When the relay came back after a silence: it gets one full cycle to show the beacon.
ALTER TABLE quarantines ADD COLUMN relay_back_at bigint;

-- deadline is now "when the watchdog must next look": the window's end, the grace's end, or the
-- end of an absence; NULL once a gap is confirmed (nothing more is due until presence returns).
UPDATE quarantines SET deadline = NULL WHERE open_alert_id IS NOT NULL;
DROP INDEX quarantines_due;
CREATE INDEX quarantines_due ON quarantines (deadline) WHERE state = 'monitoring' AND deadline IS NOT NULL;

CREATE TABLE absences (
  id uuid PRIMARY KEY,
  quarantine_id uuid NOT NULL REFERENCES quarantines (id),
  starts_at bigint NOT NULL,
  ends_at bigint NOT NULL CHECK (ends_at > starts_at),
  created_at bigint NOT NULL,
  -- Who scheduled it: 'health-authority' or 'police'; never a person.
  created_by text NOT NULL CHECK (created_by IN ('health-authority', 'police')),
  cancelled_at bigint
);

CREATE INDEX absences_quarantine ON absences (quarantine_id, ends_at) WHERE cancelled_at IS NULL;
