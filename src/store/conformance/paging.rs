//! The listing check: pages newest first, each session once, cursors that hold.

use std::time::Duration;

use super::{HOUR, create, record, started_ago, unique_user};
use crate::data::session::Session;
use crate::store::{PageRequest, SessionRecord, SessionStore};

/// Listing pages newest first (`started_at` to the millisecond, then id, both descending),
/// every session exactly once, with a cursor only while more follow.
pub async fn list_pages_newest_first<S: SessionStore>(store: &S) {
    let user = unique_user("pages");
    let mut records: Vec<SessionRecord> = (0..7u64)
        .map(|i| started_ago(&user, Duration::from_secs(60 * (7 - i))))
        .collect();
    // Two sessions started in the same millisecond: the id breaks the tie.
    let mut twin = record(&user, HOUR);
    twin.session.started_at = records[3].session.started_at;
    twin.session.last_accessed_at = twin.session.started_at;
    records.push(twin);
    for rec in &records {
        create(store, rec).await;
    }
    let mut expected: Vec<Session> = records.iter().map(|r| r.session.clone()).collect();
    crate::store::sort_for_listing(&mut expected);

    let mut page = PageRequest::first(3);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let found = store.list_by_user(&user, &page).await.unwrap();
        pages += 1;
        assert!(found.sessions.len() <= 3, "a page longer than its limit");
        seen.extend(found.sessions.clone());
        match found.next {
            Some(next) => {
                assert_eq!(
                    Some(next.clone()),
                    found.sessions.last().map(crate::store::PageCursor::after),
                    "the cursor names the page's last session"
                );
                page.after = Some(next);
            }
            None => break,
        }
        assert!(pages < 10, "the listing never ended");
    }
    assert_eq!(seen, expected, "pages in order, each session once");
    assert_eq!(pages, 3, "8 sessions in pages of 3");

    // A page exactly as long as what is left has no cursor.
    let all = store
        .list_by_user(&user, &PageRequest::first(8))
        .await
        .unwrap();
    assert_eq!(all.sessions, expected);
    assert_eq!(all.next, None, "a cursor after the last session");
    // A revoked session leaves the listing; the cursor of a revoked session still works.
    let cursor = crate::store::PageCursor::after(&expected[2]);
    store.revoke(&expected[2].session_id).await.unwrap();
    let rest = store
        .list_by_user(&user, &PageRequest::after(cursor, 100))
        .await
        .unwrap();
    assert_eq!(rest.sessions, expected[3..].to_vec());
}
