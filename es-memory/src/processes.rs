//! Process state and timers in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::StoreError;
use es_core::process::{
    DueTimer, ProcessInstance, ProcessRecord, ProcessStore, Timer, TimerChanges,
};

use crate::InMemoryEventStore;

#[async_trait]
impl ProcessStore for InMemoryEventStore {
    async fn load_process(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Option<ProcessRecord>, StoreError> {
        let processes = self.shared.processes.lock();
        Ok(processes
            .records
            .get(&(process.to_owned(), instance.to_owned()))
            .cloned())
    }

    async fn save_process(
        &self,
        process: &str,
        instance: &str,
        expected: Option<u64>,
        record: ProcessRecord,
        timers: TimerChanges,
    ) -> Result<(), StoreError> {
        let mut processes = self.shared.processes.lock();
        let key = (process.to_owned(), instance.to_owned());
        if processes.records.get(&key).map(|r| r.version) != expected {
            return Err(StoreError::ProcessConflict {
                process: process.to_owned(),
                instance: instance.to_owned(),
            });
        }
        processes.records.insert(key, record);
        for name in timers.remove {
            processes
                .timers
                .remove(&(process.to_owned(), instance.to_owned(), name));
        }
        for Timer { name, at } in timers.set {
            processes
                .timers
                .insert((process.to_owned(), instance.to_owned(), name), at);
        }
        Ok(())
    }

    async fn due_timers(
        &self,
        process: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueTimer>, StoreError> {
        let processes = self.shared.processes.lock();
        let mut due: Vec<DueTimer> = processes
            .timers
            .iter()
            .filter(|((p, _, _), at)| p == process && **at <= now)
            .map(|((_, instance, name), at)| DueTimer {
                instance: instance.clone(),
                timer: Timer {
                    name: name.clone(),
                    at: *at,
                },
            })
            .collect();
        due.sort_by_key(|d| d.timer.at);
        due.truncate(limit);
        Ok(due)
    }

    async fn list_processes(
        &self,
        process: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProcessInstance>, StoreError> {
        let processes = self.shared.processes.lock();
        let mut records: Vec<_> = processes
            .records
            .iter()
            .filter(|((p, _), _)| process.is_none_or(|wanted| wanted == p))
            .collect();
        records.sort_by(|a, b| a.0.cmp(b.0));
        records.truncate(limit);
        Ok(records
            .into_iter()
            .map(|((p, instance), record)| {
                let mut timers: Vec<Timer> = processes
                    .timers
                    .iter()
                    .filter(|((tp, ti, _), _)| tp == p && ti == instance)
                    .map(|((_, _, name), at)| Timer {
                        name: name.clone(),
                        at: *at,
                    })
                    .collect();
                timers.sort_by_key(|t| t.at);
                ProcessInstance {
                    process: p.clone(),
                    instance: instance.clone(),
                    record: record.clone(),
                    timers,
                }
            })
            .collect())
    }
}
