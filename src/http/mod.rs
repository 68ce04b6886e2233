//! The HTTP edge, the top layer and the only one that reads a request or writes a response:
//! credentials from headers and cookies (`credentials.rs` reads them, `cookies.rs` writes
//! them), the cross-site check, the layer and its extractors, the step-up guard, refusals as
//! HTTP or gRPC (all built in `refusal.rs`), and every endpoint (login, the logout family,
//! health, device binding). Policy is the engine's: this layer asks it.

/// `get_ref`, `get_mut` and `into_inner` for a middleware service whose wrapped service is its
/// `inner` field of type `S` (as tower-http's services have them).
macro_rules! inner_service_accessors {
    () => {
        /// The wrapped service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The wrapped service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes this service, returning the wrapped one.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

pub mod cookies;
pub(crate) mod credentials;
pub mod csrf;
mod current;
pub mod dbsc;
mod endpoint;
pub mod extract;
pub mod grpc;
pub mod health;
pub(crate) mod layer;
pub mod login;
pub mod logout;
pub(crate) mod refusal;
pub mod step_up;
