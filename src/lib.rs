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
//! the session in the local [`RevocationList`](sessions::RevocationList), so every JWT minted for it fails at once too,
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
//! ## Where policy lives
//!
//! Every decision about a session is taken in one place, the engine ([`Sessions`]), which takes
//! and returns plain Rust values and never sees a request:
//!
//! * **one authentication path**, [`Sessions::authenticate`]: the presented
//!   [credentials](sessions::Credentials) in (each with where it came from), an
//!   [outcome](sessions::Authenticated) or a typed [`AuthError`] out. The layer, the extractors,
//!   the logout handlers and the DBSC endpoints all go through it;
//! * **one mint gate**: every JWT the crate hands out is signed at one function, which holds the
//!   rules about who may have one (a session bound to a device gets a JWT only for a verified
//!   proof of its key);
//! * **one revocation follower** per instance, applying the store's feed to the
//!   [revocation list](sessions::RevocationList) and deciding whether the fast path is trusted.
//!
//! The HTTP edge (the [layer](SessionLayer), the [extractors](extract), [`login`], [`logout`], [`csrf`],
//! [`health`], [`step_up`], [`dbsc`], [`grpc`]) reads requests and writes responses: it extracts
//! credentials, asks the engine, and turns the answer into cookies or a refusal. Stores
//! ([`store`]) know nothing of either: a store crate needs only [`SessionStore`].
//!
//! | layer | modules | imports |
//! |---|---|---|
//! | data | [`session`], [`token`], [`events`], [`clock`] (and [`Session`], [`NewSession`]) | nothing of ours but proofs |
//! | proofs | [`proof`] (device-binding proofs) | nothing of ours |
//! | JWTs | [`jwt`] (and [`SigningKey`], [`VerificationKey`]) | data |
//! | stores | [`store`] (and [`SessionStore`], [`MemoryStore`], [`StoreError`]) | data |
//! | engine | [`sessions`], [`metrics`] (and [`Sessions`], [`SessionsBuilder`], the errors) | everything below |
//! | HTTP | [`layer`], [`extract`], [`cookies`], [`csrf`], [`login`], [`logout`], [`health`], [`step_up`], [`dbsc`], [`grpc`] | everything below |
//!
//! Every public type has exactly one path: the everyday ones at the root, the rest in their
//! module.
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
//! * Logins and logouts refuse cross-site requests ([`csrf::is_cross_site`]).
//! * Optionally, sessions are bound to the browser's device key ([`dbsc`], Device Bound Session
//!   Credentials): the opaque token alone then re-mints nothing, so copied cookies stop working
//!   within one JWT lifetime.
//!
//! ## Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
//! use tower_session_jwt::session::SessionAttributes;
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
#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, bottom up; each imports only the ones above it in this list.
mod data;
mod engine;
mod http;
pub mod jwt;
pub mod proof;
pub mod store;

pub use data::session::{NewSession, Session};
pub use engine::{AuthError, ConfigError, SessionError, Sessions, SessionsBuilder};
pub use http::layer::SessionLayer;
pub use jwt::keys::{SigningKey, VerificationKey};
pub use store::contract::{SessionStore, StoreError};
pub use store::memory::MemoryStore;

pub use http::{cookies, csrf, dbsc, extract, grpc, health, login, logout, step_up};

pub mod session {
    //! The session record's parts: ids, attributes, authentication factors, custom claims and
    //! the device binding, with the limits and checks that apply to them. The record itself is
    //! [`Session`](crate::Session).
    #[doc(inline)]
    pub use crate::data::device::{DeviceBinding, DeviceChallenge};
    #[doc(inline)]
    pub use crate::data::session::{
        AuthenticationFactor, ClientSession, CustomClaimsError, InvalidFactor, InvalidSessionId,
        InvalidUserId, MAX_CUSTOM_CLAIMS_BYTES, MAX_FACTOR_NAME_LEN, MAX_FACTORS,
        MAX_IP_ADDRESS_LEN, MAX_SESSION_ID_LEN, MAX_USER_AGENT_LEN, MAX_USER_ID_LEN,
        RESERVED_CLAIMS, SessionAttributes, SessionId, validate_custom_claims, validate_user_id,
    };
}

pub mod token {
    //! Opaque session tokens: generated, tagged, and kept by stores only as their SHA-256.
    #[doc(inline)]
    pub use crate::data::token::{
        SessionToken, TAGGED_TOKEN_LEN, TOKEN_LEN, TokenError, TokenHash, TokenKey,
    };
}

pub mod events {
    //! Session events: what happened to a session, for audit logs and notifications
    //! ([`SessionsBuilder::on_event`](crate::SessionsBuilder::on_event)).
    #[doc(inline)]
    pub use crate::data::events::{RevokeReason, RevokedBy, SessionEvent, SessionEventKind};
}

pub mod clock {
    //! Where the engine reads the time: the system clock, or a manual one for tests.
    #[doc(inline)]
    pub use crate::data::clock::{Clock, ManualClock, SystemClock};
}

pub mod sessions {
    //! The engine's types beside [`Sessions`](crate::Sessions): what its calls return, the
    //! credentials they take, the builder's settings and their defaults.
    #[doc(inline)]
    pub use crate::engine::{
        AuthPath, Authenticated, CacheSizes, Changed, CircuitBreaker, CookieConfig, Created,
        CredentialSource, Credentials, DEFAULT_FEED_STALENESS, DEFAULT_ISSUER, DEFAULT_JWT_TTL,
        DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, DEFAULT_SESSION_TTL, DbscConfig, Health,
        MAX_CHALLENGE_TTL, MAX_FEED_STALENESS, MAX_LEEWAY, MIN_FEED_STALENESS, Refreshed,
        RevocationList, SessionChange,
    };
}

pub mod layer {
    //! The types of [`SessionLayer`](crate::SessionLayer)'s service.
    #[doc(inline)]
    pub use crate::http::layer::{
        CurrentSession, ErrorHandler, RefusedCredential, ResponseFuture, SessionService, sessions,
    };
}

pub mod metrics {
    //! Metrics through the [`metrics`](https://docs.rs/metrics) facade: install any exporter
    //! (Prometheus, StatsD, OpenTelemetry, …) and these series appear. Without a recorder they cost
    //! next to nothing: the handles of the per-request series are registered once and are no-ops
    //! then.
    //!
    //! **Install the recorder before building [`Sessions`](crate::Sessions)** (at start-up, as
    //! usual): each `Sessions` registers the handles of its per-request series and of the feed's
    //! gauges when it is built, with the recorder installed then.
    //!
    //! | series | type | labels | meaning |
    //! |---|---|---|---|
    //! | `tower_session_jwt_requests_total` | counter | `path`, `outcome` | authentications: `path` is `jwt` (fast path, no store call), `jwt_confirmed` (JWT confirmed in the store), `store` (opaque token), or for a refusal `none` (refused without a store call) or `store` (refused after one); `outcome` is `authenticated` or the refusal's [`AuthError::reason`](crate::AuthError::reason) (`revoked`, `expired`, `store_error`, …) |
    //! | `tower_session_jwt_feed_trusted` | gauge | | `1` while the JWT fast path is trusted (the revocation feed is caught up and fresh), else `0` |
    //! | `tower_session_jwt_feed_lag_seconds` | gauge | | how old this instance's knowledge of revocations is: seconds since the last read that found the feed caught up was sent |
    //! | `tower_session_jwt_feed_events_total` | counter | `kind` | revocation events applied from the feed: `session_revoked`, `jwts_refused` (a claims change or rotation), `user_revoked` |
    //! | `tower_session_jwt_store_duration_seconds` | histogram | `op` | store calls: `create`, `find_by_token`, `get`, `list_by_user`, `update`, `revoke`, `revoke_all` |
    //! | `tower_session_jwt_store_circuit_open` | gauge | | `1` while the store's [circuit breaker](crate::sessions::CircuitBreaker) is open (store calls fail fast), else `0` |
    //! | `tower_session_jwt_cache_hits_total` | counter | `cache` | `jwt` (verification cache) or `token` (token cache) hits |
    //! | `tower_session_jwt_cache_misses_total` | counter | `cache` | the same caches' misses |
    //! | `tower_session_jwt_dbsc_total` | counter | `endpoint`, `outcome` | [device binding](crate::dbsc) requests: `endpoint` is `registration` or `refresh`; `outcome` is `ok` (bound, or a fresh JWT minted), `challenge` (`403` with a challenge to sign), `refused` (another 4xx: a bad proof, no session) or `error` (5xx) |
    //! | `tower_session_jwt_dbsc_duration_seconds` | histogram | `endpoint` | how long the device binding endpoints took to answer (a refresh: store read, proof check, challenge swap, JWT mint) |
    //! | `tower_session_jwt_revocations_total` | counter | `scope` | revocations made on this instance: `session` (one session), `user` (all of a user's), `others` (all but the current), `limit` (evicted by the session limit), `jwts` (older JWTs of a changed session) |
    //!
    //! The README's "Running it" section says which to alert on.
    //!
}
