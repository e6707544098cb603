//! Group commit: the one writer of a database. Operations queue up while the
//! previous transaction commits and go to the database together, in one
//! transaction, through [`ops::apply`]. A batch that fails is retried one
//! operation per transaction, so one bad operation fails alone. The same
//! loop serves both databases; only the [`Executor`] differs.

use super::executor::Executor;
use super::ops::{self, WriteOp, WriteResult};
use crate::store::StoreError;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};

/// Most operations in one transaction.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<WriteResult, StoreError>>;
type Job = (WriteOp, Reply);
/// A committed operation's reply, waiting to be sent.
type Answer = (Reply, Result<WriteResult, StoreError>);

/// The sending side, held by the store.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
    /// Notified when a commit queued new work (events accepted, deliveries
    /// replayed), before it is synced: workers may start at once.
    queued: Arc<Notify>,
}

impl Writer {
    /// Starts the writer loop over `db` on a thread of its own, with a
    /// runtime of its own: the loop is the only thing on it, and nothing
    /// else waits behind its statements.
    pub(super) fn spawn<E: Executor + Send + 'static>(db: E) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(4096);
        let queued = Arc::new(Notify::new());
        let notify = queued.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::WriterStart)?;
        std::thread::Builder::new()
            .name("hookgate-writer".into())
            .spawn(move || runtime.block_on(run(db, rx, notify)))
            .map_err(StoreError::WriterStart)?;
        Ok(Self { tx, queued })
    }

    /// Notified when a commit queued new work.
    pub(crate) fn queued(&self) -> &Arc<Notify> {
        &self.queued
    }

    /// Queues `op` and waits for its transaction to commit.
    pub(crate) async fn submit(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((op, reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// Applies queued operations in batches until every sender is gone.
async fn run<E: Executor>(mut db: E, mut rx: mpsc::Receiver<Job>, queued: Arc<Notify>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("hookgate_write_batch_size").record(batch.len() as f64);
        let queues = batch.iter().any(|(op, _)| op.queues_work());
        if commit_batch(&mut db, batch).await && queues {
            queued.notify_one();
        }
    }
}

/// Commits `batch`, answering each operation; whether the batch committed.
async fn commit_batch<E: Executor>(db: &mut E, mut batch: Vec<Job>) -> bool {
    let ops: Vec<&WriteOp> = batch.iter().map(|(op, _)| op).collect();
    let durable = ops.iter().any(|op| op.needs_sync());
    match transaction(db, &ops).await {
        Ok(results) => {
            let answers = batch
                .into_iter()
                .zip(results)
                .map(|((_, reply), result)| (reply, Ok(result)))
                .collect();
            match db.deferred_sync() {
                Some(sync) if durable => sync.after_sync(answers),
                _ => answer(answers),
            }
            true
        }
        Err(error) if batch.len() == 1 => {
            let (_, reply) = batch.pop().expect("one");
            let _ = reply.send(Err(error));
            false
        }
        Err(error) => {
            tracing::debug!(%error, size = batch.len(), "write batch failed; retrying one by one");
            for (op, reply) in batch {
                let alone = transaction(db, &[&op])
                    .await
                    .map(|mut results| results.pop().expect("one result per operation"));
                let _ = reply.send(alone);
            }
            true
        }
    }
}

fn answer(answers: Vec<Answer>) {
    for (reply, result) in answers {
        let _ = reply.send(result);
    }
}

/// Makes commits durable off the writer's thread: the writer commits
/// without waiting for the disk and hands the answers of a batch that must
/// be durable here; one sync (`sync`, e.g. an fsync of the write-ahead
/// log) covers every commit made before it started, and only then are
/// those answers sent. The writer meanwhile goes on with the next batch.
#[derive(Debug)]
pub(crate) struct DeferredSync {
    tx: std::sync::mpsc::Sender<Vec<Answer>>,
}

impl DeferredSync {
    /// Starts the syncing thread.
    pub(super) fn start(
        mut sync: impl FnMut() -> std::io::Result<()> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<Answer>>();
        std::thread::Builder::new()
            .name("hookgate-sync".into())
            .spawn(move || {
                while let Ok(mut waiting) = rx.recv() {
                    while let Ok(more) = rx.try_recv() {
                        waiting.extend(more);
                    }
                    match sync() {
                        Ok(()) => answer(waiting),
                        Err(error) => {
                            tracing::error!(%error, "could not sync the database to disk");
                            for (reply, _) in waiting {
                                let _ = reply.send(Err(StoreError::Unavailable(Box::new(
                                    std::io::Error::new(error.kind(), error.to_string()),
                                ))));
                            }
                        }
                    }
                }
            })
            .map_err(StoreError::WriterStart)?;
        Ok(Self { tx })
    }

    fn after_sync(&self, answers: Vec<Answer>) {
        if let Err(unsent) = self.tx.send(answers) {
            // The syncing thread is gone: nothing can be made durable.
            for (reply, _) in unsent.0 {
                let _ = reply.send(Err(StoreError::WriterGone));
            }
        }
    }
}

/// `ops` in one transaction, durable when any accepts an event.
async fn transaction<E: Executor>(
    db: &mut E,
    ops: &[&WriteOp],
) -> Result<Vec<WriteResult>, StoreError> {
    db.begin(ops.iter().any(|op| op.needs_sync())).await?;
    let applied = match ops::apply(db, ops).await {
        Ok(results) => db.commit().await.map(|()| results),
        Err(error) => Err(error),
    };
    if applied.is_err() {
        db.rollback().await;
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A durable batch is answered only after a sync that started after
    /// its commit has returned; a failed sync answers with an error.
    #[test]
    fn answers_wait_for_the_sync() {
        let (started_tx, started) = mpsc::channel::<()>();
        let (finish_tx, finish) = mpsc::channel::<std::io::Result<()>>();
        let sync = DeferredSync::start(move || {
            started_tx.send(()).expect("test alive");
            finish.recv().expect("test alive")
        })
        .expect("start");
        let (reply, mut answer) = oneshot::channel();
        sync.after_sync(vec![(reply, Ok(WriteResult::Changed(1)))]);
        started
            .recv_timeout(Duration::from_secs(5))
            .expect("a sync started");
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            answer.try_recv().is_err(),
            "answered before the sync returned"
        );
        finish_tx.send(Ok(())).expect("syncer alive");
        let answered = (0..500).find_map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            answer.try_recv().ok()
        });
        assert!(
            matches!(answered, Some(Ok(WriteResult::Changed(1)))),
            "{answered:?}"
        );

        let (reply, mut answer) = oneshot::channel();
        sync.after_sync(vec![(reply, Ok(WriteResult::Changed(2)))]);
        started
            .recv_timeout(Duration::from_secs(5))
            .expect("a sync started");
        finish_tx
            .send(Err(std::io::Error::other("disk gone")))
            .expect("syncer alive");
        let answered = (0..500).find_map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            answer.try_recv().ok()
        });
        assert!(
            matches!(answered, Some(Err(StoreError::Unavailable(_)))),
            "{answered:?}"
        );
    }
}
