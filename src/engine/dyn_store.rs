//! The store as the engine calls it: object safe, and timed for the metrics.

use std::future::Future;
use std::sync::Arc;

use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::store::{
    BoxFuture, CreateOutcome, PageRequest, RevocationFeed, SessionLimit, SessionPage,
    SessionRecord, SessionStore, SessionUpdate, StoreError, UpdateOutcome,
};

/// Object-safe form of [`SessionStore`], so [`Sessions`](crate::Sessions) is not generic over
/// its store. Boxing costs one allocation per store call, which only the slow path makes.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> BoxFuture<'_, Result<CreateOutcome, StoreError>>;
    fn find_by_token<'a>(
        &'a self,
        token_hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn get<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn list_by_user<'a>(
        &'a self,
        user_id: &'a str,
        page: &'a PageRequest,
    ) -> BoxFuture<'a, Result<SessionPage, StoreError>>;
    fn update<'a>(
        &'a self,
        update: &'a SessionUpdate,
    ) -> BoxFuture<'a, Result<UpdateOutcome, StoreError>>;
    fn revoke<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn revoke_all<'a>(
        &'a self,
        user_id: &'a str,
        except: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>>;
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>>;
    fn is_shared(&self) -> bool;
}

/// Runs a store call, recording its duration under `op`.
async fn timed<T>(op: &'static str, call: impl Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let result = call.await;
    super::metrics::store_call(op, started.elapsed());
    result
}

impl<S: SessionStore> DynStore for S {
    fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> BoxFuture<'_, Result<CreateOutcome, StoreError>> {
        Box::pin(timed("create", SessionStore::create(self, record, limit)))
    }
    fn find_by_token<'a>(
        &'a self,
        token_hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(timed(
            "find_by_token",
            SessionStore::find_by_token(self, token_hash),
        ))
    }
    fn get<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(timed("get", SessionStore::get(self, id)))
    }
    fn list_by_user<'a>(
        &'a self,
        user_id: &'a str,
        page: &'a PageRequest,
    ) -> BoxFuture<'a, Result<SessionPage, StoreError>> {
        Box::pin(timed(
            "list_by_user",
            SessionStore::list_by_user(self, user_id, page),
        ))
    }
    fn update<'a>(
        &'a self,
        update: &'a SessionUpdate,
    ) -> BoxFuture<'a, Result<UpdateOutcome, StoreError>> {
        Box::pin(timed("update", SessionStore::update(self, update)))
    }
    fn revoke<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(timed("revoke", SessionStore::revoke(self, id)))
    }
    fn revoke_all<'a>(
        &'a self,
        user_id: &'a str,
        except: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(timed(
            "revoke_all",
            SessionStore::revoke_all(self, user_id, except),
        ))
    }
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        SessionStore::revocation_feed(self)
    }
    fn is_shared(&self) -> bool {
        SessionStore::is_shared(self)
    }
}
