//! The control plane in the `control_requests`, `projection_reports` and `paused_projections` tables: every
//! process sharing the file sees the same requests, answers, reports and pauses.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::StoreError;
use es_core::control::{
    ControlAnswer, ControlCommand, ControlRequest, ControlStore, ProjectionReport, RequestState,
};

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{micros, time};

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend {
        operation: "encode a control record",
        source: Box::new(e),
    })
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend {
        operation: "decode a control record",
        source: Box::new(e),
    })
}

fn state(claimed_by: Option<String>, answer: Option<String>) -> Result<RequestState, StoreError> {
    let answer = answer.map(|text| parse(&text)).transpose()?;
    Ok(RequestState::of(claimed_by, answer))
}

type RequestRow = (i64, String, String, i64, i64);

fn request(
    (id, projection, command, requested_at, expires_at): RequestRow,
) -> Result<ControlRequest, StoreError> {
    Ok(ControlRequest {
        id: u64::try_from(id).unwrap_or(0),
        projection,
        command: parse(&command)?,
        requested_at: time(requested_at),
        expires_at: time(expires_at),
    })
}

fn id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

const WITHDRAWN: ControlAnswer = ControlAnswer::TimedOut { claimed_by: None };

#[async_trait]
impl ControlStore for SqliteEventStore {
    async fn submit(
        &self,
        projection: &str,
        command: ControlCommand,
        expires_at: DateTime<Utc>,
    ) -> Result<ControlRequest, StoreError> {
        let text = json(&command)?;
        let row: RequestRow = self.in_write("submit a control request", async |conn| {
            let text = &text;
            Ok(sqlx::query_as(
                        "INSERT INTO control_requests (projection, command, requested_at, expires_at) \
                         VALUES (?1, ?2, ?3, ?4) RETURNING id, projection, command, requested_at, expires_at",
                    )
                    .bind(projection)
                    .bind(text)
                    .bind(micros(Utc::now()))
                    .bind(micros(expires_at))
                    .fetch_one(&mut *conn)
                    .await?)
        }).await?;
        request(row)
    }

    async fn claim(
        &self,
        projection: &str,
        instance: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<ControlRequest>, StoreError> {
        let withdrawn = json(&WITHDRAWN)?;
        let rows: Vec<RequestRow> = self.in_write("claim control requests", async |conn| {
            let withdrawn = &withdrawn;
            sqlx::query(
                        "UPDATE control_requests SET answer = ?3 WHERE projection = ?1 AND claimed_by IS NULL \
                         AND answer IS NULL AND expires_at <= ?2",
                    )
                    .bind(projection)
                    .bind(micros(now))
                    .bind(withdrawn)
                    .execute(&mut *conn)
                    .await?;
            Ok(sqlx::query_as(
                        "UPDATE control_requests SET claimed_by = ?2 WHERE projection = ?1 AND claimed_by IS NULL \
                         AND answer IS NULL RETURNING id, projection, command, requested_at, expires_at",
                    )
                    .bind(projection)
                    .bind(instance)
                    .fetch_all(&mut *conn)
                    .await?)
        }).await?;
        let mut requests = rows
            .into_iter()
            .map(request)
            .collect::<Result<Vec<_>, _>>()?;
        requests.sort_by_key(|r| r.id);
        Ok(requests)
    }

    async fn answer(&self, request: u64, answer: ControlAnswer) -> Result<(), StoreError> {
        let text = json(&answer)?;
        self.in_write("answer a control request", async |conn| {
            let text = &text;
            sqlx::query("UPDATE control_requests SET answer = ?2 WHERE id = ?1 AND answer IS NULL")
                .bind(id(request))
                .bind(text)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
        .await
    }

    async fn request_state(&self, request: u64) -> Result<Option<RequestState>, StoreError> {
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT claimed_by, answer FROM control_requests WHERE id = ?1")
                .bind(id(request))
                .fetch_optional(self.readers())
                .await
                .map_err(backend("read a control request"))?;
        row.map(|(claimed_by, answer)| state(claimed_by, answer))
            .transpose()
    }

    async fn withdraw(&self, request: u64) -> Result<Option<RequestState>, StoreError> {
        let withdrawn = json(&WITHDRAWN)?;
        let row: Option<(Option<String>, Option<String>)> = self.in_write("withdraw a control request",
            async |conn| {
                let withdrawn = &withdrawn;
                sqlx::query(
                        "UPDATE control_requests SET answer = ?2 WHERE id = ?1 AND claimed_by IS NULL AND answer IS NULL",
                    )
                    .bind(id(request))
                    .bind(withdrawn)
                    .execute(&mut *conn)
                    .await?;
                Ok(
                    sqlx::query_as("SELECT claimed_by, answer FROM control_requests WHERE id = ?1")
                        .bind(id(request))
                        .fetch_optional(&mut *conn)
                        .await?,
                )
            }
        ).await?;
        row.map(|(claimed_by, answer)| state(claimed_by, answer))
            .transpose()
    }

    async fn report(&self, reports: &[ProjectionReport]) -> Result<(), StoreError> {
        let encoded = reports
            .iter()
            .map(|r| json(r).map(|text| (r.projection.as_str(), r.instance.as_str(), text)))
            .collect::<Result<Vec<_>, _>>()?;
        self.in_write("write projection reports", async |conn| {
            let encoded = &encoded;
            for (projection, instance, text) in encoded {
                sqlx::query(
                        "INSERT INTO projection_reports (projection, instance, report) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (projection, instance) DO UPDATE SET report = excluded.report",
                    )
                    .bind(projection)
                    .bind(instance)
                    .bind(text)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }).await
    }

    async fn reports(&self) -> Result<Vec<ProjectionReport>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT report FROM projection_reports ORDER BY projection, instance")
                .fetch_all(self.readers())
                .await
                .map_err(backend("read projection reports"))?;
        rows.iter().map(|(text,)| parse(text)).collect()
    }

    async fn set_paused(&self, projection: &str, paused: bool) -> Result<(), StoreError> {
        self.in_write("mark a projection paused", async |conn| {
            let sql = match paused {
                true => {
                    "INSERT INTO paused_projections (projection) VALUES (?1) ON CONFLICT DO NOTHING"
                }
                false => "DELETE FROM paused_projections WHERE projection = ?1",
            };
            sqlx::query(sql)
                .bind(projection)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
        .await
    }

    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT projection FROM paused_projections ORDER BY projection")
            .fetch_all(self.readers())
            .await
            .map_err(backend("read paused projections"))
    }
}
