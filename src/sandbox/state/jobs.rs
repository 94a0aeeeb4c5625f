//! `data_sync_all` jobs (`/jobs/automated`): one running job per connection, one forced refresh
//! per hour, and a status that moves from `pending` to `complete` [`JOB_SECONDS`] after the job
//! was created (on the emulator's clock, so tests can move it).

use chrono::{DateTime, Duration, Utc};

use super::{State, new_id};

/// How long a job runs.
pub(crate) const JOB_SECONDS: i64 = 2;
/// Forced refreshes allowed per connection in [`REFRESH_WINDOW_SECONDS`].
pub(crate) const ALLOWED_REFRESHES: u32 = 1;
pub(crate) const REFRESH_WINDOW_SECONDS: i64 = 3600;

/// A job of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) connection_id: String,
    pub(crate) created_at: DateTime<Utc>,
}

impl Job {
    pub(crate) fn completed_at(&self) -> DateTime<Utc> {
        self.created_at + Duration::seconds(JOB_SECONDS)
    }

    pub(crate) fn is_complete(&self, now: DateTime<Utc>) -> bool {
        now >= self.completed_at()
    }
}

/// What `POST /jobs/automated` does.
#[derive(Debug, Clone)]
pub(crate) enum JobStart {
    /// A new job, or the one still running.
    Running { job: Job, remaining: u32 },
    /// No refresh left in this window: try again at `retry_at`.
    Refused { retry_at: DateTime<Utc> },
}

impl State {
    /// The connection's jobs, newest first.
    pub(crate) fn jobs_of(&self, connection_id: &str) -> Vec<Job> {
        let mut jobs: Vec<Job> = self
            .jobs
            .iter()
            .filter(|j| j.connection_id == connection_id)
            .cloned()
            .collect();
        jobs.reverse();
        jobs
    }

    /// A job of the connection by id.
    pub(crate) fn job(&self, connection_id: &str, job_id: &str) -> Option<Job> {
        self.jobs
            .iter()
            .find(|j| j.id == job_id && j.connection_id == connection_id)
            .cloned()
    }

    /// Refreshes left for the connection in the current window.
    pub(crate) fn remaining_refreshes(&self, connection_id: &str) -> u32 {
        let since = self.now() - Duration::seconds(REFRESH_WINDOW_SECONDS);
        let used = self
            .jobs
            .iter()
            .filter(|j| j.connection_id == connection_id && j.created_at > since)
            .count();
        ALLOWED_REFRESHES.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }

    /// Starts a `data_sync_all` job, or returns the running one, or refuses.
    pub(crate) fn start_job(&mut self, connection_id: &str) -> JobStart {
        let now = self.now();
        let jobs = self.jobs_of(connection_id);
        if let Some(running) = jobs.iter().find(|j| !j.is_complete(now)) {
            return JobStart::Running {
                job: running.clone(),
                remaining: self.remaining_refreshes(connection_id),
            };
        }
        if self.remaining_refreshes(connection_id) == 0 {
            let since = now - Duration::seconds(REFRESH_WINDOW_SECONDS);
            let oldest = jobs
                .iter()
                .filter(|j| j.created_at > since)
                .map(|j| j.created_at)
                .min()
                .unwrap_or(now);
            return JobStart::Refused {
                retry_at: oldest + Duration::seconds(REFRESH_WINDOW_SECONDS),
            };
        }
        let job = Job {
            id: new_id(),
            connection_id: connection_id.to_owned(),
            created_at: now,
        };
        self.jobs.push(job.clone());
        JobStart::Running {
            job,
            remaining: self.remaining_refreshes(connection_id),
        }
    }
}
