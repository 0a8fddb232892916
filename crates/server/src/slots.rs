//! Sending and querying slots: a fixed number of pieces of work in flight
//! for one worker, refilled one by one as they end.
//!
//! A worker that claims rows (notifications to deliver, orders and refunds
//! to query) waits for at least one free slot, takes every free one,
//! claims at most that many rows and starts each in a slot of its own. A
//! slow channel or merchant endpoint so holds the slots of its own rows,
//! never the worker: the next claim happens as soon as any slot frees, not
//! when the slowest row of a round is done.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Slots {
    sem: Arc<Semaphore>,
    total: u32,
}

/// Free slots, taken: as many rows may be claimed.
pub struct Taken(OwnedSemaphorePermit);

impl Slots {
    pub fn new(total: usize) -> Slots {
        let total = u32::try_from(total.max(1)).unwrap_or(u32::MAX);
        Slots {
            sem: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Waits until at least one slot is free, and takes every free one.
    pub async fn free(&self) -> Taken {
        let mut taken = Arc::clone(&self.sem)
            .acquire_owned()
            .await
            .expect("the slots are never closed");
        let more = u32::try_from(self.sem.available_permits()).unwrap_or(0);
        if more > 0
            && let Ok(extra) = Arc::clone(&self.sem).try_acquire_many_owned(more)
        {
            taken.merge(extra);
        }
        Taken(taken)
    }

    /// Waits until no work is in flight.
    pub async fn drain(&self) {
        drop(self.sem.acquire_many(self.total).await);
    }
}

impl Taken {
    /// How many slots were taken (how many rows to claim).
    pub fn count(&self) -> usize {
        self.0.num_permits()
    }

    /// Spawns the work `work` makes of each claimed row, in a slot of its
    /// own; a row for which it makes none (`None`: skipped, for instance
    /// still in flight from an earlier claim) takes no slot, and the slots
    /// left over are freed. Returns whether the claim used every slot (more
    /// rows may be due).
    pub fn start_each<R, Fut>(
        mut self,
        rows: Vec<R>,
        mut work: impl FnMut(R) -> Option<Fut>,
    ) -> bool
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let full = rows.len() >= self.count();
        for row in rows {
            let Some(job) = work(row) else {
                continue;
            };
            let slot = self.0.split(1);
            tokio::spawn(async move {
                job.await;
                drop(slot);
            });
        }
        full
    }
}

/// The keys of the rows this instance is working on. A claim that hands
/// out a row again while its earlier work is still in flight (its next due
/// time came before a slow channel answered) skips it instead of working
/// on it twice at once.
pub struct InFlight<K>(Arc<Mutex<HashSet<K>>>);

impl<K> Clone for InFlight<K> {
    fn clone(&self) -> Self {
        InFlight(Arc::clone(&self.0))
    }
}

impl<K: Eq + Hash + Clone> InFlight<K> {
    pub fn new() -> Self {
        InFlight(Arc::new(Mutex::new(HashSet::new())))
    }

    /// Marks `key` as in flight; `None` if it already is. The mark goes
    /// when the returned guard is dropped.
    pub fn start(&self, key: &K) -> Option<InFlightGuard<K>> {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(key.clone()).then(|| InFlightGuard {
            set: self.clone(),
            key: key.clone(),
        })
    }
}

impl<K: Eq + Hash + Clone> Default for InFlight<K> {
    fn default() -> Self {
        Self::new()
    }
}

pub struct InFlightGuard<K: Eq + Hash> {
    set: InFlight<K>,
    key: K,
}

impl<K: Eq + Hash> Drop for InFlightGuard<K> {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_taken_together_and_freed_as_work_ends() {
        let slots = Slots::new(3);
        let taken = slots.free().await;
        assert_eq!(taken.count(), 3);
        let (done_a, wait_a) = tokio::sync::oneshot::channel::<()>();
        let (done_b, wait_b) = tokio::sync::oneshot::channel::<()>();
        let full = taken.start_each(vec![Some(wait_a), None, Some(wait_b)], |row| {
            row.map(|wait| async move {
                let _ = wait.await;
            })
        });
        assert!(full, "three rows claimed for three slots");
        // The skipped row took no slot.
        assert_eq!(slots.free().await.count(), 1);
        done_a.send(()).expect("a runs");
        let two = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let t = slots.free().await;
                if t.count() == 2 {
                    return t;
                }
                drop(t);
                tokio::task::yield_now().await;
            }
        });
        drop(two.await.expect("a's slot is freed when it ends"));
        let drained = tokio::time::timeout(std::time::Duration::from_millis(50), slots.drain());
        assert!(drained.await.is_err(), "b is still in flight");
        done_b.send(()).expect("b runs");
        slots.drain().await;
    }

    #[test]
    fn a_key_is_in_flight_once() {
        let f = InFlight::new();
        let g = f.start(&7).expect("first");
        assert!(f.start(&7).is_none());
        assert!(f.start(&8).is_some());
        drop(g);
        assert!(f.start(&7).is_some());
    }
}
