-- Accepted presence, kept from before its 202 until the transaction that validates it: a process
-- that dies with presence still queued loses none of it, another process (or its restart) takes
-- the rows over. A row lives for about a tenth of a second; the table stays small.
CREATE TABLE presence_journal (
  -- The process that accepted the request (a fresh id at each start) and its order there;
  -- negative for a filler (a row written so that a group of dummies costs what a real one does).
  origin uuid NOT NULL,
  seq bigint NOT NULL,
  -- The process that holds it in memory now: the origin, or one that took it over.
  holder uuid NOT NULL,
  key_hash text NOT NULL,
  -- The key was registered when accepted (a token-less request then proves the relay alive).
  registered boolean NOT NULL,
  received_at bigint NOT NULL,
  -- The request's tokens, 64 bytes each, end to end.
  tokens bytea NOT NULL,
  PRIMARY KEY (origin, seq)
);

-- No index on holder: only taking over a gone process's rows looks by it, and the table is small.

-- Every process writing the journal, with its last heartbeat (carried by its writes, at least
-- once a second): one silent for a few seconds is taken for gone and its rows are taken over.
CREATE TABLE presence_journal_owners (
  owner uuid PRIMARY KEY,
  seen_at bigint NOT NULL,
  -- Host and port it serves at: a process that binds the same port later knows this one is gone.
  place text NOT NULL
);
