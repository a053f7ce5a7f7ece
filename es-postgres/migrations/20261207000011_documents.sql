-- Document projections' documents (jsonb), keyed by projection and id; written with the projection's checkpoint
-- in one transaction. Indexes on declared fields are created by the worker (`documents_by_<field>`).
CREATE TABLE documents (
    projection text NOT NULL,
    id         text NOT NULL,
    document   jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, id)
);
