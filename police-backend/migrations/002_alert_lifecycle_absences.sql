-- Alert lifecycle: two queues (violations, beacon maintenance), de-duplicated repeats, how a gap
-- ended, cleared beacon conditions; and authorised absences sent to the app backend.

ALTER TABLE alerts ADD COLUMN queue text CHECK (queue IN ('violation', 'maintenance'));
-- Updates (state info) have no queue; kinds from before this migration are placed by kind.
UPDATE alerts SET queue = CASE WHEN kind = 'NO_PRESENCE' THEN 'violation' ELSE 'maintenance' END WHERE state <> 'info';
-- A repeat of an open alert (ALERT_UPDATED) counts here instead of opening another.
ALTER TABLE alerts ADD COLUMN occurrences integer NOT NULL DEFAULT 1 CHECK (occurrences >= 1);
-- RESOLVED_BY_EVIDENCE: true = late evidence covered the whole gap, false = presence resumed live.
ALTER TABLE alerts ADD COLUMN covered_by_evidence boolean;
-- FAULT_CLEARED: the beacon condition is gone; the alert stays until an officer resolves it.
ALTER TABLE alerts ADD COLUMN condition_cleared_at bigint;

CREATE INDEX alerts_by_queue ON alerts (queue, state, occurred_at);

-- Authorised absences. The reason is a short note for officers only: never sent to the app
-- backend, never written to the audit log.
CREATE TABLE absences (
  id uuid PRIMARY KEY,
  beacon_record uuid NOT NULL REFERENCES beacons (id),
  beacon_id text NOT NULL,
  starts_at bigint NOT NULL,
  ends_at bigint NOT NULL,
  reason text CHECK (char_length(reason) <= 200),
  created_by uuid NOT NULL REFERENCES officers (id),
  created_at bigint NOT NULL,
  cancelled_at bigint,
  cancelled_by uuid REFERENCES officers (id),
  -- Where the app backend stands: pending → scheduled | refused; cancel_pending → cancelled | cancel_refused.
  delivery text NOT NULL DEFAULT 'pending' CHECK (delivery IN ('pending', 'scheduled', 'refused', 'cancel_pending', 'cancelled', 'cancel_refused')),
  last_error text,
  updated_at bigint NOT NULL,
  CHECK (ends_at > starts_at)
);

CREATE INDEX absences_beacon ON absences (beacon_record, ends_at);

ALTER TABLE commands DROP CONSTRAINT commands_action_check;
ALTER TABLE commands ADD CONSTRAINT commands_action_check CHECK (action IN ('enable', 'end', 'absence', 'cancel-absence'));
ALTER TABLE commands ADD COLUMN absence_id uuid REFERENCES absences (id);
ALTER TABLE commands ADD CONSTRAINT commands_absence_id_check CHECK ((action IN ('absence', 'cancel-absence')) = (absence_id IS NOT NULL));

CREATE INDEX commands_absence ON commands (absence_id) WHERE absence_id IS NOT NULL;
