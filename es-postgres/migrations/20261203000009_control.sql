-- The control plane: requests an operator writes for a projection, taken and answered by the process that runs it;
-- what each runner reports about its projections; and which projections are paused.
CREATE TABLE control_requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection   text NOT NULL,
    command      jsonb NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    claimed_by   text,
    claimed_at   timestamptz,
    answer       jsonb,
    answered_at  timestamptz
);
CREATE INDEX control_requests_pending ON control_requests (projection, id)
    WHERE claimed_by IS NULL AND answer IS NULL;

CREATE TABLE projection_reports (
    projection  text NOT NULL,
    instance    text NOT NULL,
    report      jsonb NOT NULL,
    reported_at timestamptz NOT NULL,
    PRIMARY KEY (projection, instance)
);

CREATE TABLE paused_projections (
    projection text PRIMARY KEY,
    paused_at  timestamptz NOT NULL DEFAULT now()
);
