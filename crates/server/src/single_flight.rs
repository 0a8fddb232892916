//! Single-flight: while a piece of work for a key is under way in this
//! process, an identical request for the same key waits for that work's
//! answer instead of doing it again; a different request for the same key
//! waits for it to end and then takes its own turn. Used by `POST
//! /payment` (one channel call per order at a time, see
//! [`crate::service::payments`]).
//!
//! The work runs in a task of its own, so a caller that goes away (a
//! client that hangs up) neither cancels it for the others nor leaves the
//! key taken: the entry is removed when the work ends, panics included.
//! The map holds one entry per key with work under way, so it is as large
//! as the number of keys in flight and no larger.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

/// The answer of a flight: `None` if its task panicked.
type Answer<T> = Shared<BoxFuture<'static, Option<T>>>;

struct Flight<I, T> {
    id: u64,
    input: I,
    answer: Answer<T>,
}

/// The flights by key, and the last flight id given out.
type Flights<K, I, T> = Arc<Mutex<(u64, HashMap<K, Flight<I, T>>)>>;

/// Work in flight by key `K`; `I` is what makes two requests identical,
/// `T` the (cloneable) answer they share.
pub struct SingleFlight<K, I, T> {
    flights: Flights<K, I, T>,
}

impl<K, I, T> Default for SingleFlight<K, I, T> {
    fn default() -> Self {
        Self {
            flights: Arc::default(),
        }
    }
}

/// Removes a flight's entry when its task ends (or unwinds).
struct Landing<K: Hash + Eq, I, T> {
    flights: Flights<K, I, T>,
    key: K,
    id: u64,
}

impl<K: Hash + Eq, I, T> Drop for Landing<K, I, T> {
    fn drop(&mut self) {
        let mut guard = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.1.get(&self.key).is_some_and(|f| f.id == self.id) {
            guard.1.remove(&self.key);
        }
    }
}

impl<K, I, T> SingleFlight<K, I, T>
where
    K: Hash + Eq + Clone + Send + 'static,
    I: PartialEq + Send + 'static,
    T: Clone + Send + Sync + 'static,
{
    /// The answer of `work` for `key`: this call's own, or that of an
    /// identical request (`input` equal) already in flight. `None` if the
    /// work panicked.
    pub async fn run<W, F>(&self, key: K, input: I, work: W) -> Option<T>
    where
        W: FnOnce() -> F,
        F: Future<Output = T> + Send + 'static,
    {
        let mut mine = Some((input, work));
        loop {
            // The lock is held only to look and to insert, never across an
            // await: the block ends before anything is awaited.
            let (answer, led, same) = {
                let mut guard = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
                let (next_id, flights) = &mut *guard;
                if let Some(f) = flights.get(&key) {
                    let same = mine.as_ref().is_some_and(|(input, _)| f.input == *input);
                    (f.answer.clone(), false, same)
                } else {
                    // Taken only here, and a call that takes it returns
                    // after this flight: it is always there.
                    let (input, w) = mine.take()?;
                    *next_id += 1;
                    let landing = Landing {
                        flights: Arc::clone(&self.flights),
                        key: key.clone(),
                        id: *next_id,
                    };
                    let fut = w();
                    let task = tokio::spawn(async move {
                        let _landing = landing;
                        fut.await
                    });
                    let answer: Answer<T> = task.map(Result::ok).boxed().shared();
                    let flight = Flight {
                        id: *next_id,
                        input,
                        answer: answer.clone(),
                    };
                    flights.insert(key.clone(), flight);
                    (answer, true, true)
                }
            };
            let result = answer.await;
            if led || same {
                return result;
            }
            // Someone else's different request: its turn is over, ours next.
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identical_requests_share_one_run() {
        let flights = Arc::new(SingleFlight::<u32, &'static str, usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut calls = Vec::new();
        for _ in 0..50 {
            let (flights, runs) = (Arc::clone(&flights), Arc::clone(&runs));
            calls.push(tokio::spawn(async move {
                flights
                    .run(7, "same", move || async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            }));
        }
        for call in calls {
            assert_eq!(call.await.expect("joined"), Some(1));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flights.flights.lock().expect("lock").1.is_empty(), "landed");
        // Once landed, the next request runs again.
        let again = flights.run(7, "same", || async { 99 }).await;
        assert_eq!(again, Some(99));
    }

    #[tokio::test]
    async fn different_requests_take_turns_and_other_keys_do_not_wait() {
        let flights = Arc::new(SingleFlight::<u32, &'static str, &'static str>::default());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let slow = {
            let (flights, in_flight) = (Arc::clone(&flights), Arc::clone(&in_flight));
            tokio::spawn(async move {
                flights
                    .run(1, "a", move || async move {
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        "a"
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Another key runs at once.
        let other = tokio::time::timeout(
            Duration::from_millis(100),
            flights.run(2, "a", || async { "other key" }),
        )
        .await;
        assert_eq!(other, Ok(Some("other key")));
        // The same key with different input waits for "a" to end.
        let overlap = Arc::clone(&in_flight);
        let b = flights
            .run(1, "b", move || async move {
                assert_eq!(overlap.load(Ordering::SeqCst), 0, "not while a runs");
                "b"
            })
            .await;
        assert_eq!(b, Some("b"));
        assert_eq!(slow.await.expect("joined"), Some("a"));
    }

    #[tokio::test]
    async fn a_panic_frees_the_key() {
        let flights = SingleFlight::<u32, (), u8>::default();
        let first = flights
            .run(1, (), || async {
                if true {
                    panic!("boom");
                }
                1
            })
            .await;
        assert_eq!(first, None);
        assert_eq!(flights.run(1, (), || async { 2 }).await, Some(2));
    }
}
