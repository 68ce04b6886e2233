//! # tower-session-jwt
//!
//! Sessions that are fast *and* revocable, for tower services (axum, hyper, tonic).
//!
//! ## The model
//!
//! A login creates a **server-side session** and hands the client **two credentials**:
//!
//! * an **opaque session token**: 32 random bytes, the revocable source of truth. The server
//!   keeps only its SHA-256, in a pluggable [`SessionStore`];
//! * a short-lived **session JWT** (5 minutes by default), signed by this service.
//!
//! **Most requests carry a valid JWT** and are authenticated locally: the signature, the pinned
//! header, the claims and the lifetime are checked in memory, and **no store is called**. When the
//! JWT is absent, expired or untrusted, the **opaque token falls back to the store**; a live session
//! gets a freshly minted JWT, so the next requests are fast again. With sliding expiry the store
//! is written at most once per JWT lifetime.
//!
//! **Revocation** deletes the session in the store, so its opaque token fails at once, and records
//! the session in the local [`RevocationList`], so every JWT minted for it fails at once too,
//! rather than living on until it expires. The list keeps an entry only for one JWT lifetime
//! (after that, every such JWT has expired anyway), so its memory is bounded by recent
//! revocations, not by sessions. `revoke_all` records one "revoked before" instant per user.
//!
//! **Trust.** The fast path is only as good as this instance's knowledge of revocations. A store
//! shared by several instances carries a revocation feed (see [`store::RevocationFeed`] for the
//! contract); each instance follows it and trusts JWTs locally only while it has caught up with
//! it, and only for JWTs issued after the feed's horizon (the instant from which it knows every
//! revocation). Otherwise the session is confirmed in the store. [`Sessions::ready`] waits until
//! the instance has caught up.
//!
//! **Credentials stay where they came from.** A browser's cookies get refreshed cookies back; a
//! client that chose `Authorization: Bearer` never gets a cookie. A handler that sets or strips
//! the session cookies itself (a login, a logout) has the last word over the layer's refresh.
//!
//! ## Security properties
//!
//! * Only JWTs minted here are accepted: the header segment must be byte for byte the one a
//!   configured key mints (the *pinned header*), so the algorithm always comes from the key and
//!   header tricks (`alg: none`, algorithm confusion, embedded keys, `crit`) cannot work. See
//!   [`jwt`].
//! * `iss`, `aud`, `exp`, `nbf`, `iat` are required, typed and checked with a small leeway; a JWT
//!   never outlives its session, nor lives longer than the configured JWT TTL.
//! * A store failure is an error, never "no session": requests fail closed.
//! * Tokens, JWTs and keys are redacted from `Debug` output; credential headers are marked
//!   sensitive.
//! * Logins and logouts refuse cross-site requests ([`Sessions::is_cross_site`]).
//! * Optionally, sessions are bound to the browser's device key ([`dbsc`], Device Bound Session
//!   Credentials): the opaque token alone then re-mints nothing, so copied cookies stop working
//!   within one JWT lifetime.
//!
//! ## Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use tower_session_jwt::{MemoryStore, NewSession, SessionAttributes, Sessions, SigningKey};
//!
//! let sessions = Sessions::builder()
//!     .store(MemoryStore::new())
//!     .signing_key(SigningKey::generate_ed25519().unwrap())
//!     .issuer("https://app.example")
//!     .audience("app")
//!     .build()
//!     .unwrap();
//!
//! let login = sessions
//!     .create("user-42", NewSession::new().attributes(SessionAttributes::new("203.0.113.9", "curl/8")))
//!     .await
//!     .unwrap();
//!
//! let me = sessions.authenticate_jwt(login.jwt.expose()).await.unwrap();
//! assert_eq!(me.user_id, "user-42");
//! assert_eq!(sessions.list("user-42").await.unwrap().len(), 1);
//!
//! sessions.revoke_all("user-42").await.unwrap();
//! assert!(sessions.authenticate_jwt(login.jwt.expose()).await.is_err());
//! # });
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
pub mod config;
mod cookies;
mod csrf;
pub mod dbsc;
mod error;
mod events;
pub mod extract;
pub mod grpc;
pub mod health;
pub mod jwt;
mod layer;
mod login;
pub mod logout;
mod manager;
pub mod metrics;
mod revocation;
pub mod session;
pub mod step_up;
pub mod store;
mod token;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, CookieConfig, SessionsBuilder};
pub use cookies::{
    CredentialSource, Credentials, MAX_COOKIE_LEN, MAX_CREDENTIAL_HEADER_LEN, set_session_cookies,
    strip_session_cookies,
};
pub use error::{AuthError, SessionError};
pub use events::{RevokeReason, RevokedBy, SessionEvent, SessionEventKind};
pub use health::{Health, HealthService, health};
pub use jwt::{Algorithm, JwtError, KeyError, SessionJwt, SigningKey, VerificationKey};
pub use layer::{
    CurrentSession, ErrorHandler, RefusedCredential, ResponseFuture, SessionLayer, SessionService,
};
pub use login::{Login, PeerAddr};
pub use manager::{
    AuthPath, Authenticated, CacheSizes, Changed, CreatedSession, RefreshedSession, SessionChange,
    Sessions,
};
pub use revocation::{RevocationEvent, RevocationList};
pub use session::{
    AuthenticationFactor, ClientSession, NewSession, Session, SessionAttributes, SessionId,
};
pub use step_up::{RecentAuth, StepUpRequired};
pub use store::{MemoryStore, SessionStore, StoreError};
#[cfg(feature = "postgres")]
pub use store::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis-cluster")]
pub use store::{RedisClusterStore, RedisClusterStoreBuilder};
#[cfg(feature = "redis")]
pub use store::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
pub use store::{SqliteStore, SqliteStoreBuilder};
pub use token::{SessionToken, TAGGED_TOKEN_LEN, TOKEN_LEN, TokenError, TokenHash, TokenKey};
