//! Dynamic batching: texts of requests that arrive together run through the
//! model in one call. A recurrent model costs much less per text in a batch than
//! one at a time (one matrix product per step instead of one per text), so under
//! concurrent load the batch-1 requests of many clients share the work.

use crate::inference::{Prediction, TrainedModel};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<Vec<Prediction>, String>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// Queue in front of `threads` compute threads; each takes whatever is queued
/// (up to `max_texts` texts) and predicts it in one call.
pub struct Batcher {
    queue: SyncSender<Job>,
}

impl Batcher {
    pub fn start(model: Arc<TrainedModel>, threads: usize, max_texts: usize) -> Batcher {
        let (queue, jobs) = sync_channel::<Job>(4096);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads.max(1) {
            let (model, jobs) = (model.clone(), jobs.clone());
            std::thread::Builder::new()
                .name(format!("lab-predict-{i}"))
                .spawn(move || work(&model, &jobs, max_texts.max(1)))
                .expect("a compute thread starts");
        }
        Batcher { queue }
    }

    /// Predictions for `texts`, in order; Err with a message when the model fails.
    pub async fn predict(&self, texts: Vec<String>) -> Result<Vec<Prediction>, String> {
        let (reply, answer) = oneshot::channel();
        let stopped = || "the compute threads have stopped".to_string();
        match self.queue.try_send(Job { texts, reply }) {
            Ok(()) => {}
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
            // The queue is full: wait for room off the async threads.
            Err(TrySendError::Full(job)) => {
                let queue = self.queue.clone();
                tokio::task::spawn_blocking(move || queue.send(job))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|_| stopped())?;
            }
        }
        answer
            .await
            .map_err(|_| "the compute thread dropped the request".to_string())?
    }
}

/// Runs until the queue's sender is dropped.
fn work(model: &TrainedModel, jobs: &Mutex<Receiver<Job>>, max_texts: usize) {
    loop {
        let mut batch = {
            let Ok(jobs) = jobs.lock() else { return };
            let Ok(first) = jobs.recv() else { return };
            let mut batch = vec![first];
            let mut n = batch[0].texts.len();
            while n < max_texts {
                match jobs.try_recv() {
                    Ok(job) => {
                        n += job.texts.len();
                        batch.push(job);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            batch
        };
        let counts: Vec<usize> = batch.iter().map(|j| j.texts.len()).collect();
        let texts: Vec<String> = batch
            .iter_mut()
            .flat_map(|j| std::mem::take(&mut j.texts))
            .collect();
        match model.predict(&texts) {
            Ok(predictions) => {
                let mut rest = predictions.into_iter();
                for (job, n) in batch.into_iter().zip(counts) {
                    let mine: Vec<Prediction> = rest.by_ref().take(n).collect();
                    let _ = job.reply.send(Ok(mine));
                }
            }
            Err(err) => {
                for job in batch {
                    let _ = job.reply.send(Err(format!("{err:#}")));
                }
            }
        }
    }
}
