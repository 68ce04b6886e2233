//! Readiness: the revocation feed caught up and the store answering.

use serde::Serialize;

use super::Sessions;
use crate::data::session::SessionId;

/// What [`Sessions::health`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// Whether the fast path is trusted: the revocation feed is caught up and fresh (always
    /// for a store without a feed).
    pub feed_caught_up: bool,
    /// Whether the store answered a lookup.
    pub store_reachable: bool,
}

impl Health {
    /// Ready for traffic: both hold.
    pub fn ready(&self) -> bool {
        self.feed_caught_up && self.store_reachable
    }
}

impl Sessions {
    /// Checks readiness: the feed's state and one store lookup (of an id no session has),
    /// bounded by the store's own timeouts. See the [module docs](mod@crate::health).
    pub async fn health(&self) -> Health {
        let store_reachable = match SessionId::generate() {
            Ok(probe) => self.store_get(&probe).await.is_ok(),
            Err(_) => false,
        };
        Health {
            feed_caught_up: self.fast_path_trusted(),
            store_reachable,
        }
    }
}
