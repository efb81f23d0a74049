//! Process-wide background threads, each started on first use and running
//! the jobs queued to it one after another (the pre-fault worker, the
//! background fsync of rolled segments).

use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;

/// A named background thread that runs `run` on every job sent to it.
pub(crate) struct Worker<J> {
    name: &'static str,
    run: fn(J),
    /// The thread's queue; `None` if the thread could not be started.
    queue: OnceLock<Option<Sender<J>>>,
}

impl<J: Send + 'static> Worker<J> {
    /// A worker whose thread starts with the first job.
    pub(crate) const fn new(name: &'static str, run: fn(J)) -> Self {
        Worker {
            name,
            run,
            queue: OnceLock::new(),
        }
    }

    /// Queues `job`; gives it back if no thread runs (none could be
    /// started), for the caller to run itself or drop.
    pub(crate) fn send(&self, job: J) -> Result<(), J> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = channel::<J>();
            let run = self.run;
            std::thread::Builder::new()
                .name(self.name.into())
                .spawn(move || rx.into_iter().for_each(run))
                .ok()
                .map(|_| tx)
        });
        match queue {
            // The thread never exits while the process runs, so a send
            // fails only if it panicked.
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }
}
