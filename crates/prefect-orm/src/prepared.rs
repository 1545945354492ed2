//! Prepared statements that are worth keeping.
//!
//! The drivers keep a prepared statement per connection for each distinct statement text, but
//! diesel only lets statements whose text is fixed by their Rust type into that cache: an
//! `UPDATE` with a changeset, an `INSERT` that leaves columns to their defaults, an upsert, a
//! multi-row insert or raw SQL is prepared again on every call (on PostgreSQL a round trip and a
//! planning of its own). [`Prepared`] lets such a statement into the cache where its text comes
//! from a small set, which is the caller's knowledge: the statements of this crate use it when
//! the lists they bind are small or of a round batch size ([`worth_preparing`]), so the number
//! of statements a connection keeps stays bounded.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// A statement the connection prepares once and reuses (keyed by its SQL text and bind types,
/// or by its type where that fixes the text), or, built with [`Prepared::when`]`(false, …)`,
/// exactly the statement it wraps.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q> {
    query: Q,
    keep: bool,
}

impl<Q> Prepared<Q> {
    /// `query`, kept prepared on the connection.
    pub fn new(query: Q) -> Self {
        Prepared { query, keep: true }
    }

    /// `query`, kept prepared when `keep` (see [`worth_preparing`]); otherwise diesel decides.
    pub fn when(keep: bool, query: Q) -> Self {
        Prepared { query, keep }
    }
}

impl<Q: QueryId> QueryId for Prepared<Q> {
    type QueryId = Q::QueryId;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        self.query.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, backend: &DB) -> diesel::QueryResult<bool> {
        if self.keep { Ok(true) } else { self.query.is_safe_to_cache_prepared(backend) }
    }
}

/// Whether a statement whose text grows with a list of `n` values is worth keeping prepared:
/// up to 64 values, or a round batch size (a multiple of 100 up to 1,000). At most 74 texts per
/// statement shape, so a connection's cache stays bounded whatever batch sizes callers send.
pub fn worth_preparing(n: usize) -> bool {
    n <= 64 || (n % 100 == 0 && n <= 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worth_preparing_is_a_bounded_set() {
        let kept = (0..=100_000).filter(|&n| worth_preparing(n)).count();
        assert_eq!(kept, 65 + 10, "0..=64 and 100, 200, ..., 1000");
        assert!(worth_preparing(500) && worth_preparing(1) && !worth_preparing(65) && !worth_preparing(1_100));
    }
}

/// The length a list of `n` values is padded to so that its statement is worth preparing: `n`
/// up to 64, then the next multiple of 100 up to 1,000 (longer lists are left as they are).
pub fn round_list_len(n: usize) -> usize {
    if n <= 64 || n > 1_000 { n } else { n.div_ceil(100) * 100 }
}

/// Sync loading (SQLite work run on the connection's own thread).
impl<Q, C> diesel::RunQueryDsl<C> for Prepared<Q> {}
