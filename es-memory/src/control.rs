//! The control plane in memory: requests, answers, reports and pauses of the processes sharing this store.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::StoreError;
use es_core::control::{
    ControlAnswer, ControlCommand, ControlRequest, ControlStore, ProjectionReport, RequestState,
};

use crate::InMemoryEventStore;

/// Everything the control plane keeps.
#[derive(Debug, Default)]
pub(crate) struct Control {
    requests: BTreeMap<u64, (ControlRequest, RequestState)>,
    reports: BTreeMap<(String, String), ProjectionReport>,
    paused: BTreeSet<String>,
}

#[async_trait]
impl ControlStore for InMemoryEventStore {
    async fn submit(
        &self,
        projection: &str,
        command: ControlCommand,
        expires_at: DateTime<Utc>,
    ) -> Result<ControlRequest, StoreError> {
        let mut control = self.shared.control.lock();
        let id = control
            .requests
            .keys()
            .next_back()
            .map_or(1, |last| last + 1);
        let request = ControlRequest {
            id,
            projection: projection.to_owned(),
            command,
            requested_at: Utc::now(),
            expires_at,
        };
        control
            .requests
            .insert(id, (request.clone(), RequestState::Pending));
        Ok(request)
    }

    async fn claim(
        &self,
        projection: &str,
        instance: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<ControlRequest>, StoreError> {
        let mut control = self.shared.control.lock();
        let mut taken = Vec::new();
        for (request, state) in control.requests.values_mut() {
            if request.projection != projection || *state != RequestState::Pending {
                continue;
            }
            if request.expires_at <= now {
                *state = RequestState::Answered {
                    answer: ControlAnswer::TimedOut { claimed_by: None },
                };
            } else {
                *state = RequestState::Claimed {
                    instance: instance.to_owned(),
                };
                taken.push(request.clone());
            }
        }
        Ok(taken)
    }

    async fn answer(&self, id: u64, answer: ControlAnswer) -> Result<(), StoreError> {
        let mut control = self.shared.control.lock();
        if let Some((_, state)) = control.requests.get_mut(&id)
            && !matches!(state, RequestState::Answered { .. })
        {
            *state = RequestState::Answered { answer };
        }
        Ok(())
    }

    async fn request_state(&self, id: u64) -> Result<Option<RequestState>, StoreError> {
        let control = self.shared.control.lock();
        Ok(control.requests.get(&id).map(|(_, state)| state.clone()))
    }

    async fn withdraw(&self, id: u64) -> Result<Option<RequestState>, StoreError> {
        let mut control = self.shared.control.lock();
        Ok(control.requests.get_mut(&id).map(|(_, state)| {
            if *state == RequestState::Pending {
                *state = RequestState::Answered {
                    answer: ControlAnswer::TimedOut { claimed_by: None },
                };
            }
            state.clone()
        }))
    }

    async fn report(&self, reports: &[ProjectionReport]) -> Result<(), StoreError> {
        let mut control = self.shared.control.lock();
        for report in reports {
            let key = (report.projection.clone(), report.instance.clone());
            control.reports.insert(key, report.clone());
        }
        Ok(())
    }

    async fn reports(&self) -> Result<Vec<ProjectionReport>, StoreError> {
        Ok(self
            .shared
            .control
            .lock()
            .reports
            .values()
            .cloned()
            .collect())
    }

    async fn set_paused(&self, projection: &str, paused: bool) -> Result<(), StoreError> {
        let mut control = self.shared.control.lock();
        match paused {
            true => control.paused.insert(projection.to_owned()),
            false => control.paused.remove(projection),
        };
        Ok(())
    }

    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.shared.control.lock().paused.iter().cloned().collect())
    }
}
