//! The control plane in the `control_requests`, `projection_reports` and `paused_projections` tables: every process
//! connected to the database sees the same requests, answers, reports and pauses.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::StoreError;
use es_core::control::{
    ControlAnswer, ControlCommand, ControlRequest, ControlStore, ProjectionReport, RequestState,
};
use sqlx::types::Json;

use crate::PgEventStore;
use crate::error::backend;

/// How long answered requests and silent reports are kept.
const KEEP: &str = "7 days";

/// The control plane's statements, with the schema spelled in.
#[derive(Debug)]
pub(crate) struct ControlSql {
    submit: String,
    claim: String,
    answer: String,
    state: String,
    withdraw: String,
    report: String,
    reports: String,
    pause: String,
    resume: String,
    paused: String,
}

impl ControlSql {
    pub(crate) fn new(s: &str) -> Self {
        const REQUEST: &str = "id, projection, command, requested_at, expires_at";
        Self {
            submit: format!(
                "WITH pruned AS (DELETE FROM {s}.control_requests WHERE answered_at < now() - interval '{KEEP}') \
                 INSERT INTO {s}.control_requests (projection, command, expires_at) VALUES ($1, $2, $3) \
                 RETURNING {REQUEST}"
            ),
            claim: format!(
                "WITH expired AS (UPDATE {s}.control_requests SET answer = $4, answered_at = now() \
                   WHERE projection = $1 AND claimed_by IS NULL AND answer IS NULL AND expires_at <= $3) \
                 UPDATE {s}.control_requests SET claimed_by = $2, claimed_at = now() WHERE id IN \
                   (SELECT id FROM {s}.control_requests WHERE projection = $1 AND claimed_by IS NULL \
                    AND answer IS NULL AND expires_at > $3 ORDER BY id FOR UPDATE SKIP LOCKED) \
                 RETURNING {REQUEST}"
            ),
            answer: format!(
                "UPDATE {s}.control_requests SET answer = $2, answered_at = now() WHERE id = $1 AND answer IS NULL"
            ),
            state: format!("SELECT claimed_by, answer FROM {s}.control_requests WHERE id = $1"),
            withdraw: format!(
                "WITH withdrawn AS (UPDATE {s}.control_requests SET answer = $2, answered_at = now() \
                   WHERE id = $1 AND claimed_by IS NULL AND answer IS NULL RETURNING claimed_by, answer) \
                 SELECT claimed_by, answer FROM withdrawn \
                 UNION ALL SELECT claimed_by, answer FROM {s}.control_requests \
                   WHERE id = $1 AND NOT EXISTS (SELECT FROM withdrawn)"
            ),
            report: format!(
                "WITH pruned AS (DELETE FROM {s}.projection_reports WHERE reported_at < now() - interval '{KEEP}') \
                 INSERT INTO {s}.projection_reports (projection, instance, report, reported_at) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[]) \
                 ON CONFLICT (projection, instance) DO UPDATE \
                 SET report = EXCLUDED.report, reported_at = EXCLUDED.reported_at"
            ),
            reports: format!(
                "SELECT report FROM {s}.projection_reports ORDER BY projection, instance"
            ),
            pause: format!(
                "INSERT INTO {s}.paused_projections (projection) VALUES ($1) ON CONFLICT DO NOTHING"
            ),
            resume: format!("DELETE FROM {s}.paused_projections WHERE projection = $1"),
            paused: format!("SELECT projection FROM {s}.paused_projections ORDER BY projection"),
        }
    }
}

type RequestRow = (
    i64,
    String,
    Json<ControlCommand>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn request(row: RequestRow) -> ControlRequest {
    let (id, projection, Json(command), requested_at, expires_at) = row;
    ControlRequest {
        id: u64::try_from(id).unwrap_or_default(),
        projection,
        command,
        requested_at,
        expires_at,
    }
}

fn state((claimed_by, answer): (Option<String>, Option<Json<ControlAnswer>>)) -> RequestState {
    RequestState::of(claimed_by, answer.map(|Json(answer)| answer))
}

fn id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

const WITHDRAWN: ControlAnswer = ControlAnswer::TimedOut { claimed_by: None };

#[async_trait]
impl ControlStore for PgEventStore {
    async fn submit(
        &self,
        projection: &str,
        command: ControlCommand,
        expires_at: DateTime<Utc>,
    ) -> Result<ControlRequest, StoreError> {
        let row: RequestRow = sqlx::query_as(&self.inner.sql.control.submit)
            .bind(projection)
            .bind(Json(&command))
            .bind(expires_at)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(backend("submit a control request"))?;
        Ok(request(row))
    }

    async fn claim(
        &self,
        projection: &str,
        instance: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<ControlRequest>, StoreError> {
        let rows: Vec<RequestRow> = sqlx::query_as(&self.inner.sql.control.claim)
            .bind(projection)
            .bind(instance)
            .bind(now)
            .bind(Json(WITHDRAWN))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(backend("claim control requests"))?;
        let mut requests: Vec<ControlRequest> = rows.into_iter().map(request).collect();
        requests.sort_by_key(|r| r.id);
        Ok(requests)
    }

    async fn answer(&self, request: u64, answer: ControlAnswer) -> Result<(), StoreError> {
        let answer = Json(answer);
        crate::error::retrying(&self.inner.pool, || {
            sqlx::query(&self.inner.sql.control.answer)
                .bind(id(request))
                .bind(&answer)
                .execute(&self.inner.pool)
        })
        .await
        .map_err(backend("answer a control request"))?;
        Ok(())
    }

    async fn request_state(&self, request: u64) -> Result<Option<RequestState>, StoreError> {
        let row = crate::error::retrying(&self.inner.pool, || {
            sqlx::query_as(&self.inner.sql.control.state)
                .bind(id(request))
                .fetch_optional(&self.inner.pool)
        })
        .await
        .map_err(backend("read a control request"))?;
        Ok(row.map(state))
    }

    async fn withdraw(&self, request: u64) -> Result<Option<RequestState>, StoreError> {
        let row = sqlx::query_as(&self.inner.sql.control.withdraw)
            .bind(id(request))
            .bind(Json(WITHDRAWN))
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(backend("withdraw a control request"))?;
        Ok(row.map(state))
    }

    async fn report(&self, reports: &[ProjectionReport]) -> Result<(), StoreError> {
        let projections: Vec<&str> = reports.iter().map(|r| r.projection.as_str()).collect();
        let instances: Vec<&str> = reports.iter().map(|r| r.instance.as_str()).collect();
        let bodies: Vec<Json<&ProjectionReport>> = reports.iter().map(Json).collect();
        let at: Vec<DateTime<Utc>> = reports.iter().map(|r| r.reported_at).collect();
        crate::error::retrying(&self.inner.pool, || {
            sqlx::query(&self.inner.sql.control.report)
                .bind(&projections)
                .bind(&instances)
                .bind(&bodies)
                .bind(&at)
                .execute(&self.inner.pool)
        })
        .await
        .map_err(backend("write projection reports"))?;
        Ok(())
    }

    async fn reports(&self) -> Result<Vec<ProjectionReport>, StoreError> {
        let rows: Vec<(Json<ProjectionReport>,)> = crate::error::retrying(&self.inner.pool, || {
            sqlx::query_as(&self.inner.sql.control.reports).fetch_all(&self.inner.pool)
        })
        .await
        .map_err(backend("read projection reports"))?;
        Ok(rows.into_iter().map(|(Json(report),)| report).collect())
    }

    async fn set_paused(&self, projection: &str, paused: bool) -> Result<(), StoreError> {
        let sql = match paused {
            true => &self.inner.sql.control.pause,
            false => &self.inner.sql.control.resume,
        };
        crate::error::retrying(&self.inner.pool, || {
            sqlx::query(sql).bind(projection).execute(&self.inner.pool)
        })
        .await
        .map_err(backend("mark a projection paused"))?;
        Ok(())
    }

    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        crate::error::retrying(&self.inner.pool, || {
            sqlx::query_scalar(&self.inner.sql.control.paused).fetch_all(&self.inner.pool)
        })
        .await
        .map_err(backend("read paused projections"))
    }
}
