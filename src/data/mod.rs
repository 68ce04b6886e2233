//! The data model, the bottom layer: the session record and its parts, opaque tokens, session
//! events and the clock. Nothing here knows a store, a key, the engine or HTTP.

pub(crate) mod clock;
pub(crate) mod device;
pub(crate) mod events;
pub(crate) mod session;
pub(crate) mod token;
