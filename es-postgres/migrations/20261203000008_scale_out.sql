-- Partitioned projections: one row per partition holds its lease (owner, epoch, expiry) and its checkpoint, so a
-- checkpoint can only move under the lease that is current (fenced by owner and epoch, in one statement).
CREATE TABLE projection_partitions (
    projection      text NOT NULL,
    partition       integer NOT NULL CHECK (partition >= 0),
    partitions      integer NOT NULL CHECK (partitions > partition),
    owner           uuid,
    owner_name      text,
    epoch           bigint NOT NULL DEFAULT 0,
    claimed_at      timestamptz,
    expires_at      timestamptz,
    transaction_id  xid8 NOT NULL DEFAULT '0',
    global_position bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, partition)
);

-- The worker processes of a partitioned projection, each renewing its row: how many are live decides each one's
-- fair share of partitions.
CREATE TABLE projection_workers (
    projection  text NOT NULL,
    owner       uuid NOT NULL,
    owner_name  text NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (projection, owner)
);

-- Declared read models: each version of a projection's read model has its tables in a schema of its own; readers
-- query views that point at the live version, switched in one transaction when a new version has caught up.
CREATE TABLE read_models (
    projection   text NOT NULL,
    version      integer NOT NULL CHECK (version >= 1),
    schema_name  text NOT NULL,
    tables       text[] NOT NULL,
    state        text NOT NULL CHECK (state IN ('building', 'live', 'retired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    live_since   timestamptz,
    PRIMARY KEY (projection, version)
);
