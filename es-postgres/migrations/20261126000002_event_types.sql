-- The schema check lists the distinct (event type, schema version) pairs and samples each one by position.
CREATE INDEX events_type_version ON events (event_type, schema_version, global_position);
