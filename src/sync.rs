//! The synchronization primitives of the waiting protocol ([`crate::notify`]),
//! behind one switch: the real ones normally, `loom`'s model-checked ones
//! when built with `RUSTFLAGS="--cfg moldau_loom"` (see the loom tests in
//! `notify.rs`). The wrappers give both the `parking_lot` API the crate uses.
//!
//! Under loom, time is not modelled: a wait with a deadline waits until it is
//! woken, so a lost wake-up shows up as a deadlock loom reports.

#[cfg(not(moldau_loom))]
pub(crate) use parking_lot::{Condvar, Mutex};
#[cfg(not(moldau_loom))]
pub(crate) use std::sync::atomic;
#[cfg(not(moldau_loom))]
pub(crate) use std::sync::Arc;

#[cfg(moldau_loom)]
pub(crate) use loom::sync::atomic;
#[cfg(moldau_loom)]
pub(crate) use loom::sync::Arc;
#[cfg(moldau_loom)]
pub(crate) use shim::{Condvar, Mutex};

#[cfg(moldau_loom)]
mod shim {
    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    /// `loom::sync::Mutex` with `parking_lot`'s API (no poisoning).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// Its guard; the `Option` lets [`Condvar::wait`] move the inner guard.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            // A panic while locked fails the model anyway.
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // Some except inside `Condvar::wait`.
            self.0.as_deref().expect("guard present")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_deref_mut().expect("guard present")
        }
    }

    /// Whether a timed wait timed out (never, under loom).
    pub(crate) struct WaitTimeoutResult;

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            false
        }
    }

    /// `loom::sync::Condvar` with `parking_lot`'s API.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard present");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}
