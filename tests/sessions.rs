//! The session manager: creation, both authentication paths, expiry, sliding, revocation.

mod common;

use std::time::Duration;

use common::{FlakyStore, builder, manual};
use serde_json::json;
use tower_session_jwt::clock::{Clock, ManualClock};
use tower_session_jwt::events::{RevokeReason, RevokedBy, SessionEvent, SessionEventKind};
use tower_session_jwt::jwt::JwtError;
use tower_session_jwt::session::SessionAttributes;
use tower_session_jwt::{AuthError, MemoryStore, NewSession, Session, SessionError, StoreError};

#[tokio::test]
async fn create_returns_both_credentials_and_stores_the_session() {
    let (sessions, _, store) = manual();
    let created = sessions
        .create(
            "alice",
            NewSession::new()
                .attributes(SessionAttributes::new("203.0.113.7", "firefox"))
                .custom_claims(json!({"role": "admin"})),
        )
        .await
        .unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(created.token.expose().len(), 43);
    let via_jwt = sessions
        .authenticate_jwt(created.jwt.expose())
        .await
        .unwrap();
    assert_eq!(
        *via_jwt,
        created
            .session
            .clone()
            .with_attributes(SessionAttributes::default()),
        "the JWT carries the whole session but the client's address and user agent"
    );
    assert_eq!(via_jwt.custom_claims["role"], "admin");
    let via_token = sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    assert_eq!(*via_token.session, created.session);
}

#[tokio::test]
async fn jwt_path_makes_no_store_call() {
    let clock = ManualClock::starting_now();
    let store = FlakyStore::new(MemoryStore::with_clock(clock.clone()));
    let sessions = builder(&clock, store.clone()).build().unwrap();
    sessions.ready().await;
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let before = store.calls();
    store.set_down(true);
    for _ in 0..10 {
        sessions
            .authenticate_jwt(created.jwt.expose())
            .await
            .unwrap();
    }
    assert_eq!(store.calls(), before);
}

/// A JWT minted here stays on the fast path while the feed has nothing to say: an empty read
/// is not a replay, so it must not make this instance forget what it minted (a JWT minted in the
/// horizon's own second is trusted only because it was minted here).
#[tokio::test]
async fn jwts_minted_here_stay_trusted_across_empty_feed_reads() {
    // The store's own feed is followed (a wrapper would hide it), and the clock stands still,
    // so the JWT is issued in the horizon's second.
    let (sessions, _clock, _store) = manual();
    sessions.ready().await;
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    // The follower waits up to a second per read: let it read (and find nothing) a few times.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let path = sessions
        .authenticate(&tower_session_jwt::sessions::Credentials::new().with_jwt(
            created.jwt.expose(),
            tower_session_jwt::sessions::CredentialSource::Cookie,
        ))
        .await
        .unwrap()
        .path;
    assert_eq!(path, tower_session_jwt::sessions::AuthPath::Jwt);
}

#[tokio::test]
async fn revoke_kills_token_and_jwt_at_once() {
    let (sessions, _, _) = manual();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let other = sessions.create("alice", NewSession::new()).await.unwrap();
    // Warm the token cache so the revocation must beat a cached lookup too.
    sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();

    let revoked = sessions.revoke(&created.session.session_id).await.unwrap();
    assert_eq!(revoked.as_ref(), Some(&created.session));
    assert!(matches!(
        sessions.authenticate_jwt(created.jwt.expose()).await,
        Err(AuthError::Revoked)
    ));
    assert!(matches!(
        sessions.authenticate_token(created.token.expose()).await,
        Err(AuthError::Revoked | AuthError::UnknownSession)
    ));
    // The user's other session is untouched.
    sessions.authenticate_jwt(other.jwt.expose()).await.unwrap();
    sessions
        .authenticate_token(other.token.expose())
        .await
        .unwrap();
    assert_eq!(sessions.list("alice").await.unwrap().len(), 1);
}

#[tokio::test]
async fn revoke_by_token_and_by_expired_jwt() {
    let (sessions, clock, _) = manual();
    let a = sessions.create("alice", NewSession::new()).await.unwrap();
    let revoked = sessions.revoke_token(a.token.expose()).await.unwrap();
    assert_eq!(revoked.map(|s| s.session_id), Some(a.session.session_id));
    assert!(sessions.authenticate_jwt(a.jwt.expose()).await.is_err());

    let b = sessions.create("alice", NewSession::new()).await.unwrap();
    clock.advance(Duration::from_secs(600)); // the JWT has expired, the session has not
    let revoked = sessions.revoke_jwt(b.jwt.expose()).await.unwrap();
    assert_eq!(revoked.map(|s| s.session_id), Some(b.session.session_id));
    assert!(sessions.authenticate_token(b.token.expose()).await.is_err());

    // Garbage revokes nothing and is not an error for tokens; a forged JWT is refused.
    assert!(sessions.revoke_token("garbage").await.unwrap().is_none());
    assert!(matches!(
        sessions.revoke_jwt("a.b.c").await,
        Err(AuthError::InvalidJwt(_))
    ));
}

#[tokio::test]
async fn revoke_all_leaves_other_users_untouched() {
    let (sessions, clock, _) = manual();
    let a1 = sessions.create("alice", NewSession::new()).await.unwrap();
    let a2 = sessions.create("alice", NewSession::new()).await.unwrap();
    let b = sessions.create("bob", NewSession::new()).await.unwrap();
    clock.advance(Duration::from_millis(5));
    assert_eq!(sessions.revoke_all("alice").await.unwrap(), 2);
    for a in [&a1, &a2] {
        assert!(matches!(
            sessions.authenticate_jwt(a.jwt.expose()).await,
            Err(AuthError::Revoked)
        ));
        assert!(sessions.authenticate_token(a.token.expose()).await.is_err());
    }
    sessions.authenticate_jwt(b.jwt.expose()).await.unwrap();
    sessions.authenticate_token(b.token.expose()).await.unwrap();
    // Alice can sign in again afterwards.
    clock.advance(Duration::from_millis(5));
    let again = sessions.create("alice", NewSession::new()).await.unwrap();
    sessions.authenticate_jwt(again.jwt.expose()).await.unwrap();
    sessions
        .authenticate_token(again.token.expose())
        .await
        .unwrap();
}

#[tokio::test]
async fn revoke_for_user_only_touches_own_sessions() {
    let (sessions, _, _) = manual();
    let a = sessions.create("alice", NewSession::new()).await.unwrap();
    let b = sessions.create("bob", NewSession::new()).await.unwrap();
    assert!(
        sessions
            .revoke_for_user("alice", &b.session.session_id)
            .await
            .unwrap()
            .is_none()
    );
    sessions.authenticate_jwt(b.jwt.expose()).await.unwrap();
    assert!(
        sessions
            .revoke_for_user("alice", &a.session.session_id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(sessions.authenticate_jwt(a.jwt.expose()).await.is_err());
}

#[tokio::test]
async fn jwt_expires_and_token_refreshes_it() {
    let (sessions, clock, _) = manual();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    clock.advance(Duration::from_secs(306));
    assert!(matches!(
        sessions.authenticate_jwt(created.jwt.expose()).await,
        Err(AuthError::InvalidJwt(JwtError::Expired))
    ));
    let refreshed = sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    assert_ne!(refreshed.jwt.expose(), created.jwt.expose());
    assert_eq!(
        refreshed.jwt.expires_at().unix_timestamp(),
        clock.now().unix_timestamp() + 300
    );
    sessions
        .authenticate_jwt(refreshed.jwt.expose())
        .await
        .unwrap();
}

#[tokio::test]
async fn session_expiry_without_sliding() {
    let (sessions, clock, _) = manual();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    // Stay active all along: without sliding the session still ends after its TTL (1 h).
    for _ in 0..11 {
        clock.advance(Duration::from_secs(300));
        let fresh = sessions
            .authenticate_token(created.token.expose())
            .await
            .unwrap();
        assert_eq!(fresh.session.expires_at, created.session.expires_at);
    }
    clock.advance(Duration::from_secs(301));
    assert!(matches!(
        sessions.authenticate_token(created.token.expose()).await,
        Err(AuthError::UnknownSession)
    ));
}

#[tokio::test]
async fn a_jwt_never_outlives_its_session() {
    let (sessions, clock, _) = manual();
    let s = sessions.create("bob", NewSession::new()).await.unwrap();
    clock.advance(Duration::from_secs(3500));
    let near_end = sessions.authenticate_token(s.token.expose()).await.unwrap();
    assert_eq!(
        near_end.jwt.expires_at().unix_timestamp(),
        s.session.expires_at.unix_timestamp()
    );
    clock.advance(Duration::from_secs(110));
    assert!(
        sessions
            .authenticate_jwt(near_end.jwt.expose())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sliding_expiry_extends_active_sessions_with_few_writes() {
    let clock = ManualClock::starting_now();
    let store = FlakyStore::new(MemoryStore::with_clock(clock.clone()));
    let sessions = builder(&clock, store.clone())
        .sliding(true)
        .max_lifetime(Duration::from_secs(4 * 3600))
        .build()
        .unwrap();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let started = created.session.started_at;

    // Requests every 10 s for 20 minutes using only the opaque token.
    let before = store.calls();
    let mut last = None;
    for _ in 0..120 {
        clock.advance(Duration::from_secs(10));
        last = Some(
            sessions
                .authenticate_token(created.token.expose())
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    // The cache serves most lookups; writes happen at most once per JWT lifetime (300 s).
    let calls = store.calls() - before;
    assert!(calls <= 12, "{calls} store calls for 120 requests");
    assert!(last.session.expires_at > created.session.expires_at);
    assert!(last.session.expires_at >= clock.now() + Duration::from_secs(3600 - 300));

    // Active for 5 hours: the absolute cap of 4 hours still ends the session.
    for _ in 0..60 {
        clock.advance(Duration::from_secs(300));
        if sessions
            .authenticate_token(created.token.expose())
            .await
            .is_err()
        {
            break;
        }
    }
    assert!(clock.now() - started <= Duration::from_secs(4 * 3600 + 300));
    assert!(
        sessions
            .authenticate_token(created.token.expose())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn idle_sliding_session_expires() {
    let clock = ManualClock::starting_now();
    let sessions = builder(&clock, MemoryStore::with_clock(clock.clone()))
        .sliding(true)
        .build()
        .unwrap();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    clock.advance(Duration::from_secs(3601));
    assert!(
        sessions
            .authenticate_token(created.token.expose())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn extend_slides_on_demand() {
    let (sessions, clock, _) = manual();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    clock.advance(Duration::from_secs(1800));
    let extended = sessions
        .extend(&created.session.session_id)
        .await
        .unwrap()
        .unwrap();
    // An hour from now, on the session's grid: whole seconds after its start, at most a second
    // short of it.
    let short = (clock.now() + Duration::from_secs(3600)) - extended.expires_at;
    assert!(short >= time::Duration::ZERO && short < time::Duration::SECOND);
    assert_eq!(
        (extended.expires_at - created.session.started_at).subsec_nanoseconds(),
        0
    );
    clock.advance(Duration::from_secs(3000));
    sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
}

#[tokio::test]
async fn store_errors_are_never_no_session() {
    let clock = ManualClock::starting_now();
    let store = FlakyStore::new(MemoryStore::with_clock(clock.clone()));
    let sessions = builder(&clock, store.clone())
        .token_cache_capacity(0)
        .build()
        .unwrap();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    store.set_down(true);
    assert!(matches!(
        sessions.authenticate_token(created.token.expose()).await,
        Err(AuthError::Store(StoreError::Unavailable(_)))
    ));
    assert!(matches!(
        sessions.create("bob", NewSession::new()).await,
        Err(SessionError::Store(_))
    ));
    assert!(sessions.list("alice").await.is_err());
    // A failed revoke still refuses the JWT locally (fail closed).
    assert!(sessions.revoke(&created.session.session_id).await.is_err());
    assert!(matches!(
        sessions.authenticate_jwt(created.jwt.expose()).await,
        Err(AuthError::Revoked)
    ));
}

#[tokio::test]
async fn bad_input_to_create_is_refused() {
    let (sessions, _, store) = manual();
    assert!(matches!(
        sessions.create("", NewSession::new()).await,
        Err(SessionError::InvalidUserId(_))
    ));
    assert!(matches!(
        sessions.create("x".repeat(257), NewSession::new()).await,
        Err(SessionError::InvalidUserId(_))
    ));
    let reserved = json!({"exp": 1});
    assert!(matches!(
        sessions
            .create("alice", NewSession::new().custom_claims(reserved))
            .await,
        Err(SessionError::InvalidCustomClaims(_))
    ));
    assert!(matches!(
        sessions
            .create("alice", NewSession::new().custom_claims([1, 2]))
            .await,
        Err(SessionError::InvalidCustomClaims(
            tower_session_jwt::session::CustomClaimsError::NotAnObject { found: "an array" }
        ))
    ));
    assert_eq!(store.len(), 0, "nothing stored for refused input");
}

#[tokio::test]
async fn malformed_tokens_are_typed_errors() {
    let (sessions, _, _) = manual();
    for bad in ["", "short", "ñ".repeat(43).as_str(), &"A".repeat(10_000)] {
        assert!(matches!(
            sessions.authenticate_token(bad).await,
            Err(AuthError::MalformedToken)
        ));
    }
    let unknown = tower_session_jwt::token::SessionToken::generate().unwrap();
    assert!(matches!(
        sessions.authenticate_token(unknown.expose()).await,
        Err(AuthError::UnknownSession)
    ));
}

#[tokio::test]
async fn list_shows_live_sessions_newest_first() {
    let (sessions, clock, _) = manual();
    let first = sessions.create("alice", NewSession::new()).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let second = sessions.create("alice", NewSession::new()).await.unwrap();
    let listed = sessions.list("alice").await.unwrap();
    assert_eq!(
        listed.iter().map(|s| &s.session_id).collect::<Vec<_>>(),
        vec![&second.session.session_id, &first.session.session_id]
    );
    // The first has expired, the second (started a second later) has not.
    clock.advance(Duration::from_millis(3_599_500));
    assert_eq!(sessions.list("alice").await.unwrap(), vec![second.session]);
}

#[tokio::test]
async fn secrets_never_show_in_debug() {
    let (sessions, _, _) = manual();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let auth = sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    let printed = format!(
        "{created:?} {auth:?} {sessions:?} {:?}",
        created.token.hash()
    );
    assert!(!printed.contains(created.token.expose()));
    for part in created
        .jwt
        .expose()
        .split('.')
        .chain(auth.jwt.expose().split('.'))
    {
        assert!(!printed.contains(part), "JWT segment leaked: {printed}");
    }
    assert!(!printed.contains(&created.token.hash().to_base64url()));
}

#[tokio::test]
async fn configuration_is_validated() {
    use tower_session_jwt::{ConfigError, Sessions, SigningKey};
    let key = || SigningKey::generate_ed25519().unwrap();
    assert!(matches!(
        Sessions::builder().signing_key(key()).build(),
        Err(ConfigError::MissingStore)
    ));
    assert!(matches!(
        Sessions::builder().store(MemoryStore::new()).build(),
        Err(ConfigError::MissingSigningKey)
    ));
    let base = || {
        Sessions::builder()
            .store(MemoryStore::new())
            .signing_key(key())
    };
    assert!(matches!(
        base().jwt_ttl(Duration::ZERO).build(),
        Err(ConfigError::InvalidJwtTtl)
    ));
    assert!(matches!(
        base()
            .jwt_ttl(Duration::from_secs(7200))
            .session_ttl(Duration::from_secs(3600))
            .build(),
        Err(ConfigError::InvalidJwtTtl)
    ));
    assert!(matches!(
        base().leeway(Duration::from_secs(61)).build(),
        Err(ConfigError::LeewayTooLarge)
    ));
    assert!(matches!(
        base().issuer("").build(),
        Err(ConfigError::EmptyIssuerOrAudience)
    ));
}

#[tokio::test]
async fn revocations_reach_other_instances_through_the_feed() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let a = builder(&clock, store.clone()).build().unwrap();
    let b = builder(&clock, store.clone()).build().unwrap();
    a.ready().await;
    b.ready().await;
    let created = a.create("alice", NewSession::new()).await.unwrap();
    b.authenticate_jwt(created.jwt.expose()).await.unwrap();

    a.revoke(&created.session.session_id).await.unwrap();
    // The token fails on B at once (the store is shared); the JWT once B has read the feed.
    assert!(b.authenticate_token(created.token.expose()).await.is_err());
    // Until the feed delivers, B may confirm the JWT in the store (it was minted by A within
    // the second B's horizon began), which refuses it too; never does B accept it.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match b.authenticate_jwt(created.jwt.expose()).await {
            Err(AuthError::Revoked) => break,
            Err(AuthError::UnknownSession) => {}
            other => panic!("B answered {other:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "feed never delivered");
        tokio::task::yield_now().await;
    }

    // An instance started after the revocation refuses the JWT too, even before it has read
    // the feed (it confirms in the store), and after (the feed replays the retained past).
    let c = builder(&clock, store.clone()).build().unwrap();
    assert!(!c.fast_path_trusted() || c.authenticate_jwt(created.jwt.expose()).await.is_err());
    assert!(c.authenticate_jwt(created.jwt.expose()).await.is_err());
    c.ready().await;
    assert!(matches!(
        c.authenticate_jwt(created.jwt.expose()).await,
        Err(AuthError::Revoked)
    ));
}

#[tokio::test]
async fn sign_out_everywhere_refuses_a_session_started_on_a_clock_two_seconds_fast() {
    let clock = ManualClock::starting_now();
    let fast = ManualClock::new(clock.now() + Duration::from_secs(2));
    let store = MemoryStore::with_clock(clock.clone());
    let ahead = builder(&fast, store.clone()).build().unwrap();
    let revoker = builder(&clock, store.clone()).build().unwrap();
    let follower = builder(&clock, store.clone()).build().unwrap();
    for instance in [&ahead, &revoker, &follower] {
        instance.ready().await;
    }
    // Signed in on the instance whose clock runs two seconds ahead: its `started_at` is later
    // than the instant the revocation is made at on the others.
    let created = ahead.create("alice", NewSession::new()).await.unwrap();
    for instance in [&ahead, &revoker, &follower] {
        instance
            .authenticate_jwt(created.jwt.expose())
            .await
            .unwrap();
    }
    clock.advance(Duration::from_millis(500));
    fast.advance(Duration::from_millis(500));
    assert_eq!(revoker.revoke_all("alice").await.unwrap(), 1);
    // A revocation made after it, on the same feed: once an instance refuses the marker's JWT,
    // it has applied everything the sign-out published.
    let marker = revoker.create("marker", NewSession::new()).await.unwrap();
    revoker.revoke(&marker.session.session_id).await.unwrap();
    for instance in [&ahead, &follower] {
        common::until(Duration::from_secs(5), async || {
            instance
                .authenticate_jwt(marker.jwt.expose())
                .await
                .is_err()
        })
        .await;
    }
    let late = builder(&clock, store.clone()).build().unwrap();
    late.ready().await;
    for (name, instance) in [
        ("the instance it was created on", &ahead),
        ("the revoking instance", &revoker),
        ("an instance following the feed", &follower),
        ("an instance started after the sign-out", &late),
    ] {
        let answer = instance.authenticate_jwt(created.jwt.expose()).await;
        assert!(
            answer.is_err(),
            "{name} accepted the JWT of a session signed out everywhere: {answer:?}"
        );
        assert!(
            instance
                .authenticate_token(created.token.expose())
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn the_verification_cache_never_outlives_exp_or_a_revocation() {
    let (sessions, clock, _) = manual();
    sessions.ready().await;
    let a = sessions.create("alice", NewSession::new()).await.unwrap();
    let b = sessions.create("alice", NewSession::new()).await.unwrap();
    sessions.authenticate_jwt(a.jwt.expose()).await.unwrap();
    sessions.authenticate_jwt(b.jwt.expose()).await.unwrap();
    assert_eq!(sessions.cache_sizes().verified_jwts, 2);

    // A cached JWT is still checked against the revocation list.
    sessions.revoke(&a.session.session_id).await.unwrap();
    assert!(matches!(
        sessions.authenticate_jwt(a.jwt.expose()).await,
        Err(AuthError::Revoked)
    ));
    // And against its own exp, on the injected clock.
    sessions.authenticate_jwt(b.jwt.expose()).await.unwrap();
    clock.advance(Duration::from_secs(305));
    assert!(matches!(
        sessions.authenticate_jwt(b.jwt.expose()).await,
        Err(AuthError::InvalidJwt(JwtError::Expired))
    ));

    // Refused tokens are never admitted, so garbage cannot evict anything.
    let before = sessions.cache_sizes().verified_jwts;
    let token = b.jwt.expose();
    let (head, _) = token.rsplit_once('.').unwrap();
    for i in 0..100 {
        let forged = format!("{head}.{}", "A".repeat(80 + i % 7));
        assert!(sessions.authenticate_jwt(&forged).await.is_err());
    }
    assert_eq!(sessions.cache_sizes().verified_jwts, before);
}

/// The caches keep what a request can still use: once a JWT lifetime has passed, the next
/// insert sweeps out JWTs past their `exp` and token lookups older than a JWT lifetime, so
/// memory follows the recent past rather than the capacity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caches_are_swept_of_what_no_request_can_use() {
    let (sessions, clock, _) = manual();
    sessions.ready().await;
    let mut old = Vec::new();
    for _ in 0..20 {
        let created = sessions.create("alice", NewSession::new()).await.unwrap();
        sessions
            .authenticate_token(created.token.expose())
            .await
            .unwrap();
        sessions
            .authenticate_jwt(created.jwt.expose())
            .await
            .unwrap();
        old.push(created);
    }
    let sizes = sessions.cache_sizes();
    assert_eq!(sizes.verified_jwts, 20);
    assert_eq!(sizes.token_lookups, 20);
    // Past every JWT's exp and leeway: the next insert sweeps (off the request's thread), and
    // only bob's new session stays, with its JWT and its token lookup.
    clock.advance(Duration::from_secs(306));
    let fresh = sessions.create("bob", NewSession::new()).await.unwrap();
    sessions.authenticate_jwt(fresh.jwt.expose()).await.unwrap();
    let only_bob = tower_session_jwt::sessions::CacheSizes {
        verified_jwts: 1,
        token_lookups: 1,
    };
    common::until(Duration::from_secs(5), async || {
        sessions.cache_sizes() == only_bob
    })
    .await;
    // The swept tokens still work: from the store.
    sessions
        .authenticate_token(old[0].token.expose())
        .await
        .unwrap();
}

#[tokio::test]
async fn token_only_clients_reuse_a_fresh_jwt_instead_of_a_signature_per_request() {
    let (sessions, clock, _) = manual();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let first = sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(100));
    let second = sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    assert_eq!(
        first.jwt.expose(),
        second.jwt.expose(),
        "within half its life"
    );
    clock.advance(Duration::from_secs(100));
    let third = sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    assert_ne!(
        second.jwt.expose(),
        third.jwt.expose(),
        "past half its life"
    );
    assert!(third.jwt.expires_at() - clock.now() >= time::Duration::seconds(299));
    // A reused JWT is still refused once the session is revoked.
    sessions.revoke(&created.session.session_id).await.unwrap();
    assert!(
        sessions
            .authenticate_token(created.token.expose())
            .await
            .is_err()
    );
    assert!(sessions.authenticate_jwt(third.jwt.expose()).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// A login over an older session

/// A manager on a manual clock that records its session events.
fn recording(
    keep_sessions: bool,
) -> (
    tower_session_jwt::Sessions,
    ManualClock,
    std::sync::Arc<std::sync::Mutex<Vec<SessionEvent>>>,
) {
    let clock = ManualClock::starting_now();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut builder = builder(&clock, MemoryStore::with_clock(clock.clone()))
        .on_event(move |event: &SessionEvent| sink.lock().unwrap().push(event.clone()));
    if keep_sessions {
        builder = builder.keep_sessions_on_login();
    }
    (builder.build().unwrap(), clock, events)
}

/// A login request carrying `headers`.
fn login_request(headers: &[(&str, &str)]) -> http::request::Parts {
    let mut request = http::Request::post("/login");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap().into_parts().0
}

/// The `Cookie` header a browser sends after `login` set its cookies.
fn cookie_header(login: &tower_session_jwt::login::LoggedIn) -> String {
    login
        .cookies()
        .iter()
        .map(|set| set.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

fn revocations_of(
    events: &[SessionEvent],
    id: &tower_session_jwt::session::SessionId,
) -> Vec<SessionEventKind> {
    events
        .iter()
        .filter(|e| e.session_id == *id && matches!(e.kind, SessionEventKind::Revoked { .. }))
        .map(|e| e.kind.clone())
        .collect()
}

#[tokio::test]
async fn a_login_over_a_browsers_session_revokes_it() {
    let (sessions, _, events) = recording(false);
    sessions.ready().await;
    let first =
        tower_session_jwt::login::login(&sessions, &login_request(&[]), "alice", NewSession::new())
            .await
            .unwrap();
    let old = first.created.clone();
    let second = tower_session_jwt::login::login(
        &sessions,
        &login_request(&[("cookie", &cookie_header(&first))]),
        "alice",
        NewSession::new(),
    )
    .await
    .unwrap();

    assert!(
        sessions
            .authenticate_token(old.token.expose())
            .await
            .is_err()
    );
    assert!(sessions.authenticate_jwt(old.jwt.expose()).await.is_err());
    let listed: Vec<_> = sessions
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(listed, vec![second.created.session.session_id.clone()]);
    assert_eq!(
        revocations_of(&events.lock().unwrap(), &old.session.session_id),
        vec![SessionEventKind::Revoked {
            by: RevokedBy::Itself,
            reason: RevokeReason::ReplacedByLogin,
        }]
    );
    let logged = events
        .lock()
        .unwrap()
        .iter()
        .find(|e| {
            e.session_id == old.session.session_id
                && e.kind != SessionEventKind::Created { factor: None }
        })
        .cloned()
        .unwrap();
    let json = serde_json::to_value(&logged).unwrap();
    assert_eq!(
        (json["by"].as_str(), json["reason"].as_str()),
        (Some("self"), Some("replaced_by_login"))
    );
    sessions
        .authenticate_token(second.created.token.expose())
        .await
        .unwrap();
}

#[tokio::test]
async fn either_cookie_alone_names_the_session_a_login_replaces() {
    let (sessions, clock, _) = recording(false);
    sessions.ready().await;
    for (user, cookie) in [("bob", "session_token"), ("carol", "session_jwt")] {
        let old = sessions.create("alice", NewSession::new()).await.unwrap();
        let value = match cookie {
            "session_token" => old.token.expose().to_owned(),
            _ => old.jwt.expose().to_owned(),
        };
        // The JWT cookie names its session even once expired (the browser keeps it).
        clock.advance(Duration::from_secs(301));
        tower_session_jwt::login::login(
            &sessions,
            &login_request(&[("cookie", &format!("{cookie}={value}"))]),
            user,
            NewSession::new(),
        )
        .await
        .unwrap();
        assert!(
            sessions
                .get(&old.session.session_id)
                .await
                .unwrap()
                .is_none(),
            "the {cookie} cookie alone did not revoke the session it names"
        );
    }
}

#[tokio::test]
async fn forged_stale_or_bearer_credentials_replace_nothing_and_never_block_a_login() {
    let (sessions, _, events) = recording(false);
    sessions.ready().await;
    let bystander = sessions.create("alice", NewSession::new()).await.unwrap();
    let other = sessions.create("carol", NewSession::new()).await.unwrap();
    let gone = sessions.create("alice", NewSession::new()).await.unwrap();
    sessions.revoke(&gone.session.session_id).await.unwrap();
    let jwt = bystander.jwt.expose();
    let (head, _) = jwt.rsplit_once('.').unwrap();
    let forged_jwt = format!("{head}.{}", "A".repeat(86));
    let before = events.lock().unwrap().len();
    for headers in [
        vec![("cookie", format!("session_token={}", "A".repeat(43)))],
        vec![("cookie", format!("session_jwt={forged_jwt}"))],
        vec![(
            "cookie",
            "session_token=garbage; session_jwt=a.b.c".to_owned(),
        )],
        // Cookies that disagree (the token of one session, the JWT of another; two values of
        // one cookie): the conflict the layer refuses, which replaces nothing.
        vec![(
            "cookie",
            format!(
                "session_token={}; session_jwt={}",
                bystander.token.expose(),
                other.jwt.expose()
            ),
        )],
        vec![(
            "cookie",
            format!(
                "session_token={}; session_token={}",
                bystander.token.expose(),
                other.token.expose()
            ),
        )],
        // A session already gone: a stale cookie.
        vec![(
            "cookie",
            format!(
                "session_token={}; session_jwt={}",
                gone.token.expose(),
                gone.jwt.expose()
            ),
        )],
        // An API client: its `Authorization` says who it is, and its cookies replace nothing.
        vec![
            (
                "authorization",
                format!("Bearer {}", bystander.token.expose()),
            ),
            (
                "cookie",
                format!(
                    "session_token={}; session_jwt={jwt}",
                    bystander.token.expose()
                ),
            ),
        ],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        tower_session_jwt::login::login(
            &sessions,
            &login_request(&headers),
            "alice",
            NewSession::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("a login with {headers:?} failed: {e}"));
    }
    assert!(
        sessions
            .get(&bystander.session.session_id)
            .await
            .unwrap()
            .is_some()
    );
    sessions.authenticate_jwt(jwt).await.unwrap();
    sessions.authenticate_jwt(other.jwt.expose()).await.unwrap();
    let revoked = events.lock().unwrap()[before..]
        .iter()
        .filter(|e| matches!(e.kind, SessionEventKind::Revoked { .. }))
        .count();
    assert_eq!(
        revoked, 0,
        "a login revoked a session no genuine cookie named"
    );
}

#[tokio::test]
async fn with_keep_sessions_on_login_the_older_session_lives_on() {
    let (sessions, _, events) = recording(true);
    sessions.ready().await;
    let first =
        tower_session_jwt::login::login(&sessions, &login_request(&[]), "alice", NewSession::new())
            .await
            .unwrap();
    tower_session_jwt::login::login(
        &sessions,
        &login_request(&[("cookie", &cookie_header(&first))]),
        "bob",
        NewSession::new(),
    )
    .await
    .unwrap();
    sessions
        .authenticate_token(first.created.token.expose())
        .await
        .unwrap();
    sessions
        .authenticate_jwt(first.created.jwt.expose())
        .await
        .unwrap();
    assert_eq!(sessions.list("alice").await.unwrap().len(), 1);
    assert!(revocations_of(&events.lock().unwrap(), &first.created.session.session_id).is_empty());
}

#[tokio::test]
async fn a_cross_site_login_replaces_nothing() {
    let (sessions, _, _) = recording(false);
    let first =
        tower_session_jwt::login::login(&sessions, &login_request(&[]), "alice", NewSession::new())
            .await
            .unwrap();
    let refused = tower_session_jwt::login::login(
        &sessions,
        &login_request(&[
            ("cookie", &cookie_header(&first)),
            ("sec-fetch-site", "cross-site"),
        ]),
        "mallory",
        NewSession::new(),
    )
    .await;
    assert!(matches!(refused, Err(SessionError::CrossSiteRequest)));
    sessions
        .authenticate_token(first.created.token.expose())
        .await
        .unwrap();
}

/// A store whose `revoke` fails while everything else works.
#[derive(Clone)]
struct RevokeFails(MemoryStore);

impl tower_session_jwt::SessionStore for RevokeFails {
    async fn create(
        &self,
        record: tower_session_jwt::store::SessionRecord,
        limit: tower_session_jwt::store::SessionLimit,
    ) -> Result<tower_session_jwt::store::CreateOutcome, StoreError> {
        self.0.create(record, limit).await
    }
    async fn find_by_token(
        &self,
        hash: &tower_session_jwt::token::TokenHash,
    ) -> Result<Option<Session>, StoreError> {
        self.0.find_by_token(hash).await
    }
    async fn get(
        &self,
        id: &tower_session_jwt::session::SessionId,
    ) -> Result<Option<Session>, StoreError> {
        self.0.get(id).await
    }
    async fn list_by_user(
        &self,
        user_id: &str,
        page: &tower_session_jwt::store::PageRequest,
    ) -> Result<tower_session_jwt::store::SessionPage, StoreError> {
        self.0.list_by_user(user_id, page).await
    }
    async fn update(
        &self,
        update: &tower_session_jwt::store::SessionUpdate,
    ) -> Result<tower_session_jwt::store::UpdateOutcome, StoreError> {
        self.0.update(update).await
    }
    async fn revoke(
        &self,
        _: &tower_session_jwt::session::SessionId,
    ) -> Result<Option<Session>, StoreError> {
        Err(StoreError::Unavailable("revoke fails (test)".into()))
    }
    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&tower_session_jwt::session::SessionId>,
    ) -> Result<Vec<tower_session_jwt::session::SessionId>, StoreError> {
        self.0.revoke_all(user_id, except).await
    }
    fn revocation_feed(
        &self,
    ) -> Option<std::sync::Arc<dyn tower_session_jwt::store::RevocationFeed>> {
        self.0.revocation_feed()
    }
    fn is_shared(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn a_store_error_while_replacing_a_session_fails_the_login() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let sessions = builder(&clock, RevokeFails(store.clone()))
        .without_circuit_breaker()
        .build()
        .unwrap();
    let first =
        tower_session_jwt::login::login(&sessions, &login_request(&[]), "alice", NewSession::new())
            .await
            .unwrap();
    let answer = tower_session_jwt::login::login(
        &sessions,
        &login_request(&[("cookie", &cookie_header(&first))]),
        "alice",
        NewSession::new(),
    )
    .await;
    assert!(
        matches!(answer, Err(SessionError::Store(_))),
        "the login went on without replacing the session: {answer:?}"
    );
    // No new session was stored, so none is left behind that no browser holds.
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_login_in_the_same_browser_fits_a_limit_of_one_session() {
    use tower_session_jwt::store::{SessionLimit, WhenFull};
    let clock = ManualClock::starting_now();
    let sessions = builder(&clock, MemoryStore::with_clock(clock.clone()))
        .session_limit(SessionLimit::new(1, WhenFull::Refuse))
        .build()
        .unwrap();
    let first =
        tower_session_jwt::login::login(&sessions, &login_request(&[]), "alice", NewSession::new())
            .await
            .unwrap();
    // The replaced session is revoked before the new one is counted against the limit.
    tower_session_jwt::login::login(
        &sessions,
        &login_request(&[("cookie", &cookie_header(&first))]),
        "alice",
        NewSession::new(),
    )
    .await
    .unwrap();
    // Another browser is still refused.
    assert!(matches!(
        tower_session_jwt::login::login(&sessions, &login_request(&[]), "alice", NewSession::new())
            .await,
        Err(SessionError::SessionLimitReached)
    ));
}

/// The trusted client-IP header is a name checked when the sessions are built (any case), and a
/// login behind the proxy records the address the proxy added: the rightmost of the list.
#[tokio::test]
async fn the_client_ip_header_is_checked_at_build_and_read_rightmost() {
    use tower_session_jwt::ConfigError;
    let clock = ManualClock::starting_now();
    for bad in ["", "X Forwarded For", "x-forwarded-for:", "é"] {
        let built = builder(&clock, MemoryStore::new())
            .trusted_client_ip_header(bad)
            .build();
        assert!(
            matches!(built, Err(ConfigError::InvalidClientIpHeader(ref name)) if name == bad),
            "{bad:?} was accepted"
        );
    }
    let sessions = builder(&clock, MemoryStore::new())
        .trusted_client_ip_header("X-Forwarded-For")
        .build()
        .unwrap();
    let (parts, ()) = http::Request::post("/login")
        .header("x-forwarded-for", "198.51.100.7, 203.0.113.9")
        .header("user-agent", "curl/8")
        .body(())
        .unwrap()
        .into_parts();
    let logged_in = tower_session_jwt::login::login(&sessions, &parts, "alice", NewSession::new())
        .await
        .unwrap();
    assert_eq!(
        logged_in.created.session.attributes.ip_address,
        "203.0.113.9"
    );
}
