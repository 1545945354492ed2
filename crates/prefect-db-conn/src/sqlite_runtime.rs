//! Where an SQLite connection's work runs: on the caller's thread when it cannot wait for a
//! lock, on tokio's blocking pool when it might.
//!
//! diesel-async's `SyncConnectionWrapper` hands every statement, `BEGIN` and `COMMIT` to a
//! [`SpawnBlocking`] runtime. Sending each one to the blocking pool keeps the async threads free
//! while SQLite sleeps in its busy handler, but costs two thread wake-ups per statement (tens of
//! microseconds, more than the statement itself for the small writes a server makes). This
//! runtime sends work to the pool only when it could wait for SQLite's write lock:
//!
//! - while the connection holds the write lock (after a `BEGIN IMMEDIATE` succeeded, until the
//!   transaction ends), every statement runs inline: nothing can make it wait for a lock (in WAL
//!   mode readers never block and a writer holding the lock never waits), so it costs its own
//!   CPU time and I/O only;
//! - a write transaction first tries `BEGIN IMMEDIATE` inline with SQLite's busy timeout at zero;
//!   only when another connection holds the lock does it go to the blocking pool and wait there
//!   with the configured timeout ([`Conn::transaction`](crate::conn::Conn::transaction));
//! - everything else (reads and writes outside a write transaction, migrations) goes to the
//!   blocking pool.
//!
//! The transaction code tells the runtime what a task is through the task's result type (the
//! runtime sees only `FnOnce() -> R`): a task returning `QueryResult<`[`NoWait`]`>` runs inline
//! and one returning `QueryResult<`[`MayWait`]`>` runs where the lock state says; either reports
//! whether the connection holds the write lock afterwards. An error reports "not held", which
//! only ever sends later work to the pool (always safe).

use diesel::QueryResult;
use diesel_async::sync_connection_wrapper::SpawnBlocking;
use futures_util::future::BoxFuture;
use std::any::Any;
use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the connection holds SQLite's write lock after a transaction step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// The write lock is held (a `BEGIN IMMEDIATE` succeeded).
    Held,
    /// No write lock is held.
    Free,
    /// A `BEGIN IMMEDIATE` tried without waiting found the lock taken: nothing was begun.
    Busy,
}

/// The result of a transaction step that never waits for a lock: it runs inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoWait(pub LockState);

/// The result of a transaction step that may wait for a lock unless the connection already
/// holds it: inline while the lock is held, on the blocking pool otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MayWait(pub LockState);

type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// The [`SpawnBlocking`] runtime of every SQLite connection of this crate.
pub struct SqliteRuntime {
    handle: Option<tokio::runtime::Handle>,
    /// Whether the connection holds the write lock; shared with tasks on the blocking pool,
    /// which report when they finish.
    write_lock: Arc<AtomicBool>,
}

impl SqliteRuntime {
    /// Whether the connection holds the write lock, as last reported.
    pub fn holds_write_lock(&self) -> bool {
        self.write_lock.load(Ordering::Acquire)
    }
}

/// The lock state a task's result reports, if it is a transaction step.
fn reported<R: 'static>(result: &R) -> Option<LockState> {
    let any: &dyn Any = result;
    if let Some(step) = any.downcast_ref::<QueryResult<NoWait>>() {
        return Some(step.as_ref().map(|s| s.0).unwrap_or(LockState::Free));
    }
    if let Some(step) = any.downcast_ref::<QueryResult<MayWait>>() {
        return Some(step.as_ref().map(|s| s.0).unwrap_or(LockState::Free));
    }
    None
}

fn record(flag: &AtomicBool, state: Option<LockState>) {
    if let Some(state) = state {
        flag.store(state == LockState::Held, Ordering::Release);
    }
}

/// Runs `task` on this thread; a panic becomes an error instead of unwinding into the caller.
fn run_inline<R>(task: impl FnOnce() -> R) -> Result<R, BoxError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(task))
        .map_err(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            format!("an SQLite task panicked: {what}").into()
        })
}

impl SpawnBlocking for SqliteRuntime {
    fn spawn_blocking<'a, R>(&mut self, task: impl FnOnce() -> R + Send + 'static) -> BoxFuture<'a, Result<R, BoxError>>
    where
        R: Send + 'static,
    {
        let no_wait = std::any::TypeId::of::<R>() == std::any::TypeId::of::<QueryResult<NoWait>>();
        let flag = Arc::clone(&self.write_lock);
        let inline = no_wait || flag.load(Ordering::Acquire) || self.handle.is_none();
        match (&self.handle, inline) {
            (Some(handle), false) => {
                let job = Finishing(Some(handle.spawn_blocking(task)));
                Box::pin(async move {
                    let result = job.await.map_err(BoxError::from)?;
                    record(&flag, reported(&result));
                    Ok(result)
                })
            }
            _ => {
                let result = run_inline(task);
                if let Ok(result) = &result {
                    record(&flag, reported(result));
                } else {
                    flag.store(false, Ordering::Release);
                }
                Box::pin(std::future::ready(result))
            }
        }
    }

    fn get_runtime() -> Self {
        SqliteRuntime {
            // Outside a tokio runtime there is no async thread to keep free: run inline.
            handle: tokio::runtime::Handle::try_current().ok(),
            write_lock: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A task on the blocking pool that is waited for if its future is dropped first: the task
/// borrows the connection, which must not be used again before it has finished.
struct Finishing<R>(Option<tokio::task::JoinHandle<R>>);

impl<R> std::future::Future for Finishing<R> {
    type Output = Result<R, tokio::task::JoinError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match self.0.as_mut() {
            Some(job) => {
                let polled = std::pin::Pin::new(job).poll(cx);
                if polled.is_ready() {
                    self.0 = None;
                }
                polled
            }
            None => std::task::Poll::Pending,
        }
    }
}

impl<R> Drop for Finishing<R> {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            // The task runs on another thread, so waiting here cannot deadlock on either kind
            // of tokio runtime; SQLite statements are short, and the busy timeout bounds a wait.
            while !job.is_finished() {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> SqliteRuntime {
        SqliteRuntime::get_runtime()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn only_no_wait_steps_and_work_under_the_lock_run_inline() {
        let here = std::thread::current().id();
        let mut rt = runtime();
        let on_pool = rt.spawn_blocking(|| std::thread::current().id()).await.expect("ran");
        assert_ne!(on_pool, here, "plain work goes to the blocking pool");

        // A failed lock attempt leaves later work on the pool.
        let busy: QueryResult<NoWait> = rt.spawn_blocking(|| Ok(NoWait(LockState::Busy))).await.expect("ran");
        assert_eq!(busy.expect("ok"), NoWait(LockState::Busy));
        assert!(!rt.holds_write_lock());

        let held: QueryResult<NoWait> = rt.spawn_blocking(|| Ok(NoWait(LockState::Held))).await.expect("ran");
        assert_eq!(held.expect("ok"), NoWait(LockState::Held));
        assert!(rt.holds_write_lock());
        let inline = rt.spawn_blocking(|| std::thread::current().id()).await.expect("ran");
        assert_eq!(inline, here, "under the write lock work runs inline");

        let ended: QueryResult<MayWait> = rt.spawn_blocking(|| Ok(MayWait(LockState::Free))).await.expect("ran");
        assert_eq!(ended.expect("ok"), MayWait(LockState::Free));
        assert!(!rt.holds_write_lock());
        let back = rt.spawn_blocking(|| std::thread::current().id()).await.expect("ran");
        assert_ne!(back, here);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lock_taken_on_the_pool_is_recorded_and_errors_release_it() {
        let mut rt = runtime();
        let taken: QueryResult<MayWait> = rt.spawn_blocking(|| Ok(MayWait(LockState::Held))).await.expect("ran");
        assert!(taken.is_ok());
        assert!(rt.holds_write_lock(), "a BEGIN IMMEDIATE that waited on the pool is recorded");
        let failed: QueryResult<MayWait> =
            rt.spawn_blocking(|| Err(diesel::result::Error::RollbackTransaction)).await.expect("ran");
        assert!(failed.is_err());
        assert!(!rt.holds_write_lock(), "a failed step sends later work to the pool");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_inline_task_is_an_error() {
        let mut rt = runtime();
        let _: QueryResult<NoWait> = rt.spawn_blocking(|| Ok(NoWait(LockState::Held))).await.expect("ran");
        let result = rt.spawn_blocking(|| -> u8 { panic!("boom") }).await;
        let message = result.expect_err("a panic is an error").to_string();
        assert!(message.contains("boom"), "{message}");
        assert!(!rt.holds_write_lock());
    }
}
