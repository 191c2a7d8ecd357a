//! Uploads behind the computation: a few threads shared by the process take entries as
//! they are written locally and send them to a remote store; each call can wait for its own.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, LazyLock, Mutex};

use super::{Entry, Store, StoreError};

/// Uploads running at once in the process.
const UPLOADERS: usize = 4;

/// What one upload sends.
pub(crate) enum Upload {
    Entry { entry: Box<Entry>, payload: PathBuf },
    Record { name: String, bytes: Vec<u8> },
}

/// The uploads of one call that have not finished.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    count: Mutex<usize>,
    done: Condvar,
}

impl Pending {
    /// Waits until every upload submitted with this has finished.
    pub(crate) fn wait(&self) {
        let mut count = self
            .count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *count > 0 {
            count = self
                .done
                .wait(count)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn finished(&self) {
        let mut count = self
            .count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *count = count.saturating_sub(1);
        self.done.notify_all();
    }
}

struct Job {
    store: Arc<dyn Store>,
    upload: Upload,
    pending: Arc<Pending>,
}

/// Queues `upload` to `store`, counted in `pending`.
pub(crate) fn submit(store: Arc<dyn Store>, upload: Upload, pending: &Arc<Pending>) {
    static QUEUE: LazyLock<Mutex<Sender<Job>>> = LazyLock::new(|| {
        let (send, receive) = channel::<Job>();
        let receive = Arc::new(Mutex::new(receive));
        for n in 0..UPLOADERS {
            let receive = Arc::clone(&receive);
            let _ = std::thread::Builder::new()
                .name(format!("stage-upload-{n}"))
                .spawn(move || work(&receive));
        }
        Mutex::new(send)
    });
    *pending
        .count
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
    let job = Job {
        store,
        upload,
        pending: Arc::clone(pending),
    };
    let sent = QUEUE
        .lock()
        .map_err(|_| ())
        .and_then(|queue| queue.send(job).map_err(|_| ()));
    if sent.is_err() {
        pending.finished();
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = match &job.upload {
            Upload::Entry { entry, payload } => job.store.put(entry, payload).map(drop),
            Upload::Record { name, bytes } => job.store.put_record(name, bytes),
        };
        if let Err(e) = result {
            report(&e);
        }
        job.pending.finished();
    }
}

/// A store that cannot be reached has said so once (its breaker); the rest is for logs.
fn report(e: &StoreError) {
    tracing::debug!(error = %e, "upload to the remote cache failed");
}
