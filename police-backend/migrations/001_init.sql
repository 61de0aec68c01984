-- Police backend schema v1. The only place a beacon maps to a home address. Never holds
-- SK_T_PAST, SK_BEACON or anything linking a beacon to a phone. Times are Unix milliseconds.

CREATE TABLE officers (
  id uuid PRIMARY KEY,
  username text NOT NULL UNIQUE,
  -- scrypt$N$r$p$salt$hash
  password_hash text NOT NULL,
  role text NOT NULL CHECK (role IN ('officer', 'supervisor')),
  failed_attempts integer NOT NULL DEFAULT 0,
  locked_until bigint,
  created_at bigint NOT NULL
);

-- Server-side record of sessions, so signing out ends a session for good.
CREATE TABLE sessions (
  id text PRIMARY KEY,
  officer_id uuid NOT NULL REFERENCES officers (id),
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  revoked_at bigint
);

CREATE TABLE beacons (
  id uuid PRIMARY KEY,
  beacon_id text NOT NULL,
  address text NOT NULL,
  case_ref text NOT NULL,
  installed_by uuid NOT NULL REFERENCES officers (id),
  installed_at bigint NOT NULL,
  ended_at bigint,
  status text NOT NULL CHECK (status IN ('registered', 'enable_pending', 'monitoring', 'end_pending', 'ended')),
  last_error text,
  updated_at bigint NOT NULL
);

CREATE UNIQUE INDEX beacons_active ON beacons (beacon_id) WHERE status <> 'ended';

-- Enable/end requests to the app backend, retried until it confirms.
CREATE TABLE commands (
  id uuid PRIMARY KEY,
  seq bigserial NOT NULL,
  beacon_record uuid NOT NULL REFERENCES beacons (id),
  action text NOT NULL CHECK (action IN ('enable', 'end')),
  created_at bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  done_at bigint,
  last_error text
);

CREATE INDEX commands_pending ON commands (seq) WHERE done_at IS NULL;

-- One row per alert the app backend sent, keyed by its alert ID: redeliveries change nothing.
CREATE TABLE alerts (
  id uuid PRIMARY KEY,
  beacon_record uuid REFERENCES beacons (id),
  beacon_id text NOT NULL,
  kind text NOT NULL,
  state text NOT NULL CHECK (state IN ('open', 'acknowledged', 'dispatched', 'resolved', 'info')),
  outcome text CHECK (outcome IN ('violation_confirmed', 'false_alarm', 'beacon_fault', 'presence_proven_later')),
  note text,
  occurred_at bigint NOT NULL,
  received_at bigint NOT NULL,
  gap_started_at bigint,
  last_presence_at bigint,
  related_alert_id uuid,
  recovered_at bigint,
  evidence_until bigint,
  detail text NOT NULL,
  updated_at bigint NOT NULL
);

CREATE INDEX alerts_queue ON alerts (state, occurred_at);
CREATE INDEX alerts_beacon ON alerts (beacon_id, occurred_at);

CREATE TABLE reviews (
  id uuid PRIMARY KEY,
  alert_id uuid NOT NULL REFERENCES alerts (id),
  officer_id uuid NOT NULL REFERENCES officers (id),
  action text NOT NULL,
  from_state text NOT NULL,
  to_state text NOT NULL,
  outcome text,
  note text,
  at bigint NOT NULL
);

-- Append-only and hash-chained: hash = SHA-256(prev_hash ‖ entry). The trigger refuses edits;
-- the chain shows any edit made by someone who got past it.
CREATE TABLE audit_log (
  seq bigint PRIMARY KEY,
  at bigint NOT NULL,
  officer text NOT NULL,
  action text NOT NULL,
  subject text NOT NULL,
  detail text NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
