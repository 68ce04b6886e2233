//! The README's whole program (`examples/quickstart.rs`) does what the README says: a login sets
//! both cookies, the protected route answers with them (and 401 without), the claims change
//! refuses the JWT minted before it and hands the browser a new one, and the logout revokes the
//! session and strips the cookies. The README shows the program exactly as it is.

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;
use tower_session_jwt::store::sqlite::SqliteStore;
use tower_session_jwt::{Sessions, SigningKey};

#[test]
fn the_readme_shows_the_program_as_it_is() {
    let readme = include_str!("../README.md");
    let program = include_str!("../examples/quickstart.rs");
    let code = &program[program
        .find("use axum::")
        .expect("the program's first import")..];
    assert!(
        readme.contains(code.trim_end()),
        "README.md's whole program differs from examples/quickstart.rs"
    );
}

struct Browser {
    app: axum::Router,
    cookies: Vec<(String, String)>,
}

impl Browser {
    async fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if !jar.is_empty() {
            request = request.header(header::COOKIE, jar.join("; "));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_owned())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

#[tokio::test]
async fn the_quickstart_program_logs_in_changes_claims_and_logs_out() {
    let dir = std::env::temp_dir().join(format!("quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sessions = Sessions::builder()
        .store(SqliteStore::open(dir.join("sessions.db")).await.unwrap())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .issuer("http://127.0.0.1:3000")
        .audience("quickstart")
        .build()
        .unwrap();
    sessions.ready().await;
    let mut browser = Browser {
        app: quickstart::app(&sessions),
        cookies: Vec::new(),
    };

    assert_eq!(
        browser.send("GET", "/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let login = r#"{"user":"alice","password":"pw"}"#;
    let (status, body) = browser.send("POST", "/login", Some(login)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user_id"], "alice");
    let first_jwt = browser.cookie("session_jwt").expect("the JWT cookie");
    assert!(
        browser.cookie("session_token").is_some(),
        "the token cookie"
    );

    let (status, me) = browser.send("GET", "/me", None).await;
    assert_eq!(
        (status, &me["user_id"]),
        (StatusCode::OK, &Value::from("alice"))
    );

    let (status, promoted) = browser.send("POST", "/promote", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(promoted["claims"]["role"], "admin");
    let new_jwt = browser.cookie("session_jwt").unwrap();
    assert_ne!(new_jwt, first_jwt, "the browser got the new JWT");
    assert!(
        sessions.authenticate_jwt(&first_jwt).await.is_err(),
        "the old JWT is refused"
    );
    let (_, me) = browser.send("GET", "/me", None).await;
    assert_eq!(me["claims"]["role"], "admin");

    let token = browser.cookie("session_token").unwrap();
    let (logout, _) = browser.send("POST", "/logout", None).await;
    assert!(logout.is_success(), "logout answered {logout}");
    assert!(browser.cookie("session_token").is_none() && browser.cookie("session_jwt").is_none());
    assert!(
        sessions.authenticate_token(&token).await.is_err(),
        "the session is revoked"
    );
    assert!(sessions.authenticate_jwt(&new_jwt).await.is_err());
    assert_eq!(
        browser.send("GET", "/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // An empty password is refused before any session is made.
    let refused = r#"{"user":"mallory","password":""}"#;
    assert_eq!(
        browser.send("POST", "/login", Some(refused)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(sessions.list("mallory").await.unwrap().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}
