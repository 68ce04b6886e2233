//! The HTTP edge, the top layer and the only one that reads a request or writes a response:
//! credentials from headers and cookies, the cross-site check, the layer and its extractors, the
//! step-up guard, refusals as HTTP or gRPC, and every endpoint (login, the logout family,
//! health, device binding). Policy is the engine's: this layer asks it.

pub mod cookies;
pub(crate) mod csrf;
pub mod dbsc;
mod endpoint;
pub mod extract;
pub mod grpc;
pub mod health;
pub(crate) mod layer;
pub mod login;
pub mod logout;
pub mod step_up;
