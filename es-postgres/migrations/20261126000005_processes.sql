-- Process managers: one row per instance (state, version for compare-and-set, handled input keys) and their timers.
CREATE TABLE processes (
    process    text NOT NULL,
    instance   text NOT NULL,
    version    bigint NOT NULL,
    state      jsonb NOT NULL,
    handled    jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (process, instance)
);

CREATE TABLE process_timers (
    process  text NOT NULL,
    instance text NOT NULL,
    name     text NOT NULL,
    due_at   timestamptz NOT NULL,
    PRIMARY KEY (process, instance, name)
);
CREATE INDEX process_timers_due ON process_timers (process, due_at);
