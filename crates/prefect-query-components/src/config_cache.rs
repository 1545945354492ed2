//! `read_configuration_value` and its cache (spec §8.1, §8.2): Prefect's `TTLCache(maxsize=100,
//! ttl=3600)` of `configuration.value` by key.

use crate::QueryResult;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prefect_db_config::{Conn, dispatch};
use prefect_orm::models::{ConfigurationChangeset, NewConfiguration};
use prefect_orm::schema::configuration;
use prefect_orm::types::Val;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Prefect's cache size.
pub const CONFIGURATION_CACHE_SIZE: usize = 100;
/// Prefect's cache lifetime (`ONE_HOUR`).
pub const CONFIGURATION_CACHE_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug)]
struct Entry {
    value: serde_json::Value,
    expires: Instant,
    last_used: u64,
}

/// A TTL cache with at most `capacity` keys: expired entries are dropped first, then the least
/// recently used (what `cachetools.TTLCache` does).
#[derive(Debug)]
pub(crate) struct TtlCache {
    capacity: usize,
    ttl: Duration,
    tick: u64,
    entries: HashMap<String, Entry>,
}

impl TtlCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        TtlCache {
            capacity,
            ttl,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    pub(crate) fn get(&mut self, key: &str) -> Option<serde_json::Value> {
        let now = Instant::now();
        self.tick += 1;
        let tick = self.tick;
        match self.entries.get_mut(key) {
            Some(e) if e.expires > now => {
                e.last_used = tick;
                Some(e.value.clone())
            }
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&mut self, key: String, value: serde_json::Value) {
        let now = Instant::now();
        self.tick += 1;
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| e.expires > now);
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
            key,
            Entry {
                value,
                expires: now + self.ttl,
                last_used: self.tick,
            },
        );
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The shared handle on a cache.
pub(crate) type SharedCache = Arc<Mutex<TtlCache>>;

fn lock(cache: &SharedCache) -> std::sync::MutexGuard<'_, TtlCache> {
    cache.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) async fn read(
    cache: &SharedCache,
    conn: &mut Conn<'_>,
    key: &str,
) -> QueryResult<Option<serde_json::Value>> {
    if let Some(hit) = lock(cache).get(key) {
        return Ok(Some(hit));
    }
    let key_owned = key.to_owned();
    let value: Option<serde_json::Value> = dispatch!(conn, |c| {
        configuration::table
            .filter(configuration::key.eq(key_owned.clone()))
            .select(configuration::value)
            .first::<Val<serde_json::Value>>(c)
            .await
            .optional()
    })?
    .map(|v| v.0);
    if let Some(v) = &value {
        lock(cache).insert(key.to_owned(), v.clone());
    }
    Ok(value)
}

pub(crate) fn clear(cache: &SharedCache, key: &str) {
    lock(cache).remove(key);
}

pub(crate) fn cached_len(cache: &SharedCache) -> usize {
    lock(cache).len()
}

/// Prefect's `write_configuration`: updates the row with this key or inserts one, then clears
/// the key from the cache.
pub(crate) async fn write(
    cache: &SharedCache,
    conn: &mut Conn<'_>,
    key: &str,
    value: serde_json::Value,
) -> QueryResult<()> {
    let key_owned = key.to_owned();
    let mut changes = ConfigurationChangeset::new();
    changes.value = Some(value.clone());
    let updated: usize = dispatch!(conn, |c| {
        diesel::update(configuration::table.filter(configuration::key.eq(key_owned.clone())))
            .set(changes.clone())
            .execute(c)
            .await
    })?;
    if updated == 0 {
        let row = NewConfiguration::new(key, value);
        dispatch!(conn, |c| diesel::insert_into(configuration::table)
            .values(row.clone())
            .execute(c)
            .await)?;
    }
    clear(cache, key);
    Ok(())
}

/// Deletes the row with this key and clears the key from the cache; returns whether a row went.
pub(crate) async fn delete(
    cache: &SharedCache,
    conn: &mut Conn<'_>,
    key: &str,
) -> QueryResult<bool> {
    let key_owned = key.to_owned();
    let n: usize = dispatch!(conn, |c| {
        diesel::delete(configuration::table.filter(configuration::key.eq(key_owned.clone())))
            .execute(c)
            .await
    })?;
    clear(cache, key);
    Ok(n > 0)
}
