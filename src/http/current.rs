//! What [`SessionLayer`](crate::SessionLayer) leaves in a request's extensions: the
//! [`CurrentSession`] of an authenticated request (with the layer's [`Sessions`]), and how to
//! find the layer's [`Sessions`] on any request it let through.

use std::fmt;
use std::sync::Arc;

use crate::data::session::Session;
use crate::engine::Sessions;

/// The authenticated session of a request, as the layer stores it in the request extensions,
/// with the [`Sessions`] of that layer.
///
/// Shared (an `Arc`): handlers that only read the session need not clone it. Also an axum
/// extractor (see [`crate::extract`]). One value carries both, so that an authenticated
/// request costs one extension insert.
///
/// # Example
///
/// Outside axum (hyper, tonic), read it from the extensions:
///
/// ```
/// use tower_session_jwt::layer::CurrentSession;
///
/// fn user_of<B>(request: &http::Request<B>) -> Option<&str> {
///     let current = request.extensions().get::<CurrentSession>()?;
///     Some(&current.user_id)
/// }
/// # let _ = user_of::<()>;
/// ```
#[derive(Clone)]
pub struct CurrentSession(pub Arc<Session>, Sessions);

impl CurrentSession {
    /// `session`, authenticated by `sessions`: what [`SessionLayer`](crate::SessionLayer) inserts. For tests of
    /// handlers that run without the layer.
    pub fn new(sessions: Sessions, session: Arc<Session>) -> Self {
        Self(session, sessions)
    }

    /// The [`Sessions`] that authenticated the request.
    pub fn sessions(&self) -> &Sessions {
        &self.1
    }
}

impl fmt::Debug for CurrentSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CurrentSession").field(&self.0).finish()
    }
}

impl std::ops::Deref for CurrentSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

/// The [`Sessions`] of the [`SessionLayer`](crate::SessionLayer) that ran in front of a request, from its
/// extensions: in the [`CurrentSession`] of an authenticated request, else on its own (a
/// request the layer let through without a session). `None` when no layer ran.
///
/// # Example
///
/// ```
/// use tower_session_jwt::layer::sessions;
///
/// fn behind_the_layer<B>(request: &http::Request<B>) -> bool {
///     sessions(request.extensions()).is_some()
/// }
/// assert!(!behind_the_layer(&http::Request::new(())));
/// ```
pub fn sessions(extensions: &http::Extensions) -> Option<&Sessions> {
    match extensions.get::<CurrentSession>() {
        Some(current) => Some(current.sessions()),
        None => extensions.get::<Sessions>(),
    }
}
