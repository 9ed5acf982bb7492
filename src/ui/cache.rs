//! What depends only on an experiment's finished trials (the leaderboard with
//! its bootstrap evidence, the parameter charts, a search's history) is
//! computed once per change of them and kept: a finished trial never changes,
//! so a page polled while others run costs only what moved.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Entries kept (experiments × views); the oldest goes first.
const ENTRIES: usize = 64;

type Entry = (String, Arc<dyn Any + Send + Sync>);

/// A small cache of computed values by key.
#[derive(Default)]
pub struct Cache {
    entries: Mutex<VecDeque<Entry>>,
}

impl Cache {
    /// The value under `key`, made by `make` when absent (or of another type).
    /// Two requests that miss together both compute it; the last one is kept.
    ///
    /// # Errors
    /// `make`'s error (nothing is kept).
    pub fn get_or<T: Any + Send + Sync>(
        &self,
        key: String,
        make: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<Arc<T>> {
        let found = {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.clone().downcast::<T>().ok())
        };
        if let Some(v) = found {
            return Ok(v);
        }
        let value = Arc::new(make()?);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| *k != key);
        if entries.len() >= ENTRIES {
            entries.pop_front();
        }
        entries.push_back((key, value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_made_once_per_key() {
        let cache = Cache::default();
        let mut made = 0;
        for _ in 0..3 {
            let v = cache
                .get_or("a".into(), || {
                    made += 1;
                    Ok(7)
                })
                .unwrap();
            assert_eq!(*v, 7);
        }
        assert_eq!(made, 1);
        assert_eq!(*cache.get_or("b".into(), || Ok(8)).unwrap(), 8);
        assert!(cache
            .get_or::<i32>("c".into(), || anyhow::bail!("no"))
            .is_err());
        assert_eq!(*cache.get_or("c".into(), || Ok(9)).unwrap(), 9);
    }

    #[test]
    fn the_oldest_entry_goes_first() {
        let cache = Cache::default();
        for i in 0..=ENTRIES {
            cache.get_or(format!("{i}"), || Ok(i)).unwrap();
        }
        let mut remade = false;
        cache
            .get_or("0".to_string(), || {
                remade = true;
                Ok(0)
            })
            .unwrap();
        assert!(remade, "entry 0 was evicted");
    }
}
