//! The `NotificationQueue` port on SQLite: the outbox table, leases by receipt, retries with
//! a due time. A delivery that finally fails moves to the dead-letter table with its reason
//! (newest `DEAD_LETTERS_KEPT` kept), once the dispatcher has recorded it in the notification
//! log and on its watch.

use super::*;

pub(super) fn epoch_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A receipt names one delivery (`<id>:<attempt>`), so a sender whose lease ran out and whose
/// job went to another sender cannot acknowledge or reschedule the newer delivery.
pub(super) fn parse_receipt(receipt: &str) -> Result<(String, i64), StoreError> {
    receipt
        .rsplit_once(':')
        .and_then(|(id, n)| Some((id.to_string(), n.parse().ok()?)))
        .ok_or_else(|| StoreError::backend(format!("not a notification receipt: {receipt}")))
}

/// Dead letters kept: enough to read what went wrong, bounded so a receiver that is down for
/// a month cannot grow the file without limit.
const DEAD_LETTERS_KEPT: i64 = 1000;

#[async_trait]
impl NotificationQueue for SqliteStore {
    async fn send(&self, jobs: Vec<NotificationJob>) -> Result<(), StoreError> {
        let now = epoch_millis();
        let rows = jobs
            .iter()
            .map(|j| Ok((j.id.clone(), serde_json::to_string(j).map_err(backend)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.run(move |tx| {
            for (id, job) in rows {
                exec(tx,
                    "INSERT OR IGNORE INTO notification_queue (id, job, attempt, visible_at) VALUES (?1, ?2, 0, ?3)",
                    params![id, job, now],
                )
                .map_err(backend)?;
            }
            Ok(((), Vec::new()))
        })
        .await
    }

    async fn receive(
        &self,
        max: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<ReceivedNotification>, StoreError> {
        let now = epoch_millis();
        let hidden_until = now + lease.as_millis() as i64;
        let rows = self
            .run(move |tx| {
                let mut stmt = tx
                    .prepare(
                        "SELECT id, job, attempt FROM notification_queue WHERE visible_at <= ?1 ORDER BY visible_at LIMIT ?2",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![now, max as i64], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                    })
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend)?;
                for (id, _, attempt) in &rows {
                    exec(tx,
                        "UPDATE notification_queue SET attempt = ?2, visible_at = ?3 WHERE id = ?1",
                        params![id, attempt + 1, hidden_until],
                    )
                    .map_err(backend)?;
                }
                Ok((rows, Vec::new()))
            })
            .await?;
        rows.into_iter()
            .map(|(id, job, attempt)| {
                let job: NotificationJob = serde_json::from_str(&job)
                    .map_err(|e| StoreError::Corrupt(format!("notification job {id}: {e}")))?;
                Ok(ReceivedNotification {
                    job,
                    receipt: format!("{id}:{}", attempt + 1),
                    attempt: u32::try_from(attempt + 1).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn ack(&self, receipt: &str) -> Result<(), StoreError> {
        let (id, attempt) = parse_receipt(receipt)?;
        self.run(move |tx| {
            exec(
                tx,
                "DELETE FROM notification_queue WHERE id = ?1 AND attempt = ?2",
                params![id, attempt],
            )
            .map_err(backend)?;
            Ok(((), Vec::new()))
        })
        .await
    }

    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), StoreError> {
        let (id, attempt) = parse_receipt(receipt)?;
        let visible_at = epoch_millis() + delay.as_millis() as i64;
        self.run(move |tx| {
            exec(
                tx,
                "UPDATE notification_queue SET visible_at = ?3 WHERE id = ?1 AND attempt = ?2",
                params![id, attempt, visible_at],
            )
            .map_err(backend)?;
            Ok(((), Vec::new()))
        })
        .await
    }

    async fn dead_letter(
        &self,
        rec: &ReceivedNotification,
        reason: &str,
    ) -> Result<(), StoreError> {
        let (id, attempt) = parse_receipt(&rec.receipt)?;
        let reason = reason.to_string();
        let now = epoch_millis();
        self.run(move |tx| {
            exec(tx,
                "INSERT OR REPLACE INTO notification_dead_letters (id, job, attempt, reason, failed_at)
                 SELECT id, job, attempt, ?3, ?4 FROM notification_queue WHERE id = ?1 AND attempt = ?2",
                params![id, attempt, reason, now],
            )
            .map_err(backend)?;
            exec(tx,
                "DELETE FROM notification_queue WHERE id = ?1 AND attempt = ?2",
                params![id, attempt],
            )
            .map_err(backend)?;
            exec(tx,
                "DELETE FROM notification_dead_letters WHERE id NOT IN
                 (SELECT id FROM notification_dead_letters ORDER BY failed_at DESC, id LIMIT ?1)",
                params![DEAD_LETTERS_KEPT],
            )
            .map_err(backend)?;
            Ok(((), Vec::new()))
        })
        .await
    }

    async fn dead_letter_depth(&self) -> Result<usize, StoreError> {
        self.run(|tx| {
            let n: i64 = query_row(
                tx,
                "SELECT COUNT(*) FROM notification_dead_letters",
                [],
                |r| r.get(0),
            )
            .map_err(backend)?;
            Ok((usize::try_from(n).unwrap_or(0), Vec::new()))
        })
        .await
    }

    async fn depth(&self) -> Result<usize, StoreError> {
        self.run(|tx| {
            let n: i64 = query_row(tx, "SELECT COUNT(*) FROM notification_queue", [], |r| {
                r.get(0)
            })
            .map_err(backend)?;
            Ok((usize::try_from(n).unwrap_or(0), Vec::new()))
        })
        .await
    }
}
