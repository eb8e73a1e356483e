//! Which stripe of a snapshot's counters the current thread writes.
//!
//! A thread claims one of [`EXCLUSIVE`] process-wide stripe numbers on its first counted
//! evaluation and keeps it until it exits. While it holds the number, it is the only
//! writer of that stripe in every counting snapshot, so it can count with a plain load and
//! store instead of a locked read-modify-write: on this machine `lock add` took ~8 ns, more
//! than the whole budget for counting (5 ns), and a plain increment ~1.4 ns. Threads beyond
//! [`EXCLUSIVE`] share one more stripe ([`SHARED`]) and count with `fetch_add`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Stripes that one thread owns at a time (one bit each in [`CLAIMED`]).
pub(crate) const EXCLUSIVE: usize = 64;

/// The stripe of threads that found every exclusive stripe taken; written atomically.
pub(crate) const SHARED: usize = EXCLUSIVE;

/// A thread that has not counted yet.
pub(crate) const UNASSIGNED: usize = usize::MAX;

/// Bit `i` is set while a thread owns stripe `i`.
static CLAIMED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's stripe. `const` and without a destructor, so reading it is a single
    /// thread-pointer-relative load on the hot path.
    static STRIPE: Cell<usize> = const { Cell::new(UNASSIGNED) };
    /// Gives the stripe back when the thread exits. Touched only when claiming.
    static OWNED: Owned = const { Owned(Cell::new(UNASSIGNED)) };
}

/// This thread's stripe: below [`EXCLUSIVE`] it owns it, [`SHARED`] or [`UNASSIGNED`].
#[inline(always)]
pub(crate) fn current() -> usize {
    STRIPE.with(Cell::get)
}

/// Claims a free exclusive stripe for this thread, or settles for [`SHARED`].
#[cold]
pub(crate) fn claim() -> usize {
    let mut claimed = CLAIMED.load(Ordering::Relaxed);
    let stripe = loop {
        if claimed == u64::MAX {
            break SHARED;
        }
        let bit = (!claimed).trailing_zeros() as usize;
        // Acquire: the previous owner's increments (released when it exited) happen
        // before ours, so each cell of the stripe keeps counting up from where it was.
        match CLAIMED.compare_exchange_weak(
            claimed,
            claimed | 1 << bit,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => break bit,
            Err(now) => claimed = now,
        }
    };
    // A thread already tearing down its thread-locals cannot register the release: it
    // gives the stripe back at once and counts on the shared stripe.
    let stripe = if stripe < EXCLUSIVE && OWNED.try_with(|o| o.0.set(stripe)).is_err() {
        release(stripe);
        SHARED
    } else {
        stripe
    };
    STRIPE.with(|s| s.set(stripe));
    stripe
}

fn release(stripe: usize) {
    // Release: pairs with the Acquire in `claim` (see there).
    CLAIMED.fetch_and(!(1 << stripe), Ordering::Release);
}

/// The exclusive stripe this thread holds, given back on thread exit.
struct Owned(Cell<usize>);

impl Drop for Owned {
    fn drop(&mut self) {
        let stripe = self.0.get();
        if stripe < EXCLUSIVE {
            // Anything this thread still evaluates after this point (another
            // thread-local's destructor) counts on the shared stripe.
            let _ = STRIPE.try_with(|s| s.set(SHARED));
            release(stripe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_own_distinct_stripes_and_give_them_back() {
        let a = std::thread::spawn(claim).join().unwrap();
        assert!(a < EXCLUSIVE);
        // `a`'s thread has exited: its stripe is free again (other tests may hold some).
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            tx.send(claim()).unwrap();
            done_rx.recv().unwrap();
        });
        let held = rx.recv().unwrap();
        let other = std::thread::spawn(claim).join().unwrap();
        assert_ne!(held, other, "two live threads share an exclusive stripe");
        done_tx.send(()).unwrap();
        holder.join().unwrap();
    }
}
