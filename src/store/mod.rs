//! Where sessions live: the [`SessionStore`] trait and its implementations.
//!
//! A store keeps sessions indexed three ways: by the SHA-256 of the opaque token (how requests
//! find them), by session id (how revocation and listing name them), and by user (how "all my
//! devices" and "sign out everywhere" find them). It never sees a token itself.
//!
//! The trait is deliberately small and depends on nothing HTTP: a store crate needs only this
//! module. Run [`conformance`] against your implementation (feature `conformance`).

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod feed;
pub(crate) mod memory;
mod page;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sqlx_common;

pub(crate) mod contract;

pub use contract::{BoxError, BoxFuture, SessionRecord};
pub(crate) use contract::{SessionStore, StoreError};
pub use feed::{FeedBatch, FeedCursor, RevocationEvent, RevocationFeed};
pub use page::{
    CreateOutcome, InvalidCursor, PageCursor, PageRequest, SessionLimit, SessionPage,
    SessionUpdate, UpdateOutcome, WhenFull, sort_for_listing, started_ms,
};
