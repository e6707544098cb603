//! Group commit: the one writer of a database. Operations queue up while the
//! previous transaction commits and go to the database together, in one
//! transaction, through [`ops::apply`]. A batch that fails is retried one
//! operation per transaction, so one bad operation fails alone. The same
//! loop serves both databases; only the [`Executor`] differs.

use super::executor::Executor;
use super::ops::{self, WriteOp, WriteResult};
use crate::store::StoreError;
use tokio::sync::{mpsc, oneshot};

/// Most operations in one transaction.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<WriteResult, StoreError>>;
type Job = (WriteOp, Reply);

/// The sending side, held by the store.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer loop over `db` on a thread of its own, with a
    /// runtime of its own: the loop is the only thing on it, and nothing
    /// else waits behind its statements.
    pub(super) fn spawn<E: Executor + Send + 'static>(db: E) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(4096);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::WriterStart)?;
        std::thread::Builder::new()
            .name("hookgate-writer".into())
            .spawn(move || runtime.block_on(run(db, rx)))
            .map_err(StoreError::WriterStart)?;
        Ok(Self { tx })
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
async fn run<E: Executor>(mut db: E, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("hookgate_write_batch_size").record(batch.len() as f64);
        commit_batch(&mut db, batch).await;
    }
}

async fn commit_batch<E: Executor>(db: &mut E, mut batch: Vec<Job>) {
    let ops: Vec<&WriteOp> = batch.iter().map(|(op, _)| op).collect();
    match transaction(db, &ops).await {
        Ok(results) => {
            for ((_, reply), result) in batch.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(error) if batch.len() == 1 => {
            let (_, reply) = batch.pop().expect("one");
            let _ = reply.send(Err(error));
        }
        Err(error) => {
            tracing::debug!(%error, size = batch.len(), "write batch failed; retrying one by one");
            for (op, reply) in batch {
                let alone = transaction(db, &[&op])
                    .await
                    .map(|mut results| results.pop().expect("one result per operation"));
                let _ = reply.send(alone);
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
