//! The one async runtime the object stores' futures run on: made once per process, two
//! threads, shared by every remote store and every calling thread.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("stage-remote")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
}

/// Runs `future` to completion on the shared runtime, from synchronous code.
///
/// A caller that is itself inside an async runtime (a pipeline called from async code)
/// waits on a thread of its own, since a runtime cannot be blocked on from within another.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output, String>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime().ok_or("the async runtime of the remote cache could not start")?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(runtime.block_on(future));
    }
    std::thread::scope(|s| {
        s.spawn(|| runtime.block_on(future))
            .join()
            .map_err(|_| "the remote cache's request panicked".to_owned())
    })
}
