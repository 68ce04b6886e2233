//! [`forward_session_store!`]: a test store that wraps another and forwards every
//! [`SessionStore`](tower_session_jwt::SessionStore) call to it, with hooks for the few
//! calls each test store changes.

/// Implements `SessionStore` for a wrapper by forwarding every call to the store that
/// `|this| <expr>` names, in this order of optional parts:
///
/// * `every call { … }`: run first in every call (`this` is the wrapper; `?` may fail the call);
/// * `find_by_token before { … }`, `find_by_token after { … }`: around the inner lookup;
/// * `update before { … }`: just before the inner update;
/// * then items written out in full, for `revocation_feed` and `is_shared` (their trait
///   defaults, no feed and shared, apply otherwise).
///
/// ```ignore
/// forward_session_store! {
///     impl SessionStore for Wrapper => |this| this.inner;
///     every call { this.check()?; }
///     fn is_shared(&self) -> bool { self.inner.is_shared() }
/// }
/// ```
macro_rules! forward_session_store {
    (
        impl SessionStore for $ty:ty => |$this:ident| $inner:expr;
        $(every call $every:block)?
        $(find_by_token before $find_before:block)?
        $(find_by_token after $find_after:block)?
        $(update before $update_before:block)?
        $(fn $name:ident $args:tt -> $ret:ty $body:block)*
    ) => {
        impl ::tower_session_jwt::SessionStore for $ty {
            async fn create(
                &self,
                record: ::tower_session_jwt::store::SessionRecord,
                limit: ::tower_session_jwt::store::SessionLimit,
            ) -> Result<::tower_session_jwt::store::CreateOutcome, ::tower_session_jwt::StoreError>
            {
                let $this = self;
                $($every)?
                ::tower_session_jwt::SessionStore::create(&$inner, record, limit).await
            }
            async fn find_by_token(
                &self,
                hash: &::tower_session_jwt::token::TokenHash,
            ) -> Result<Option<::tower_session_jwt::Session>, ::tower_session_jwt::StoreError>
            {
                let $this = self;
                $($every)?
                $($find_before)?
                let found =
                    ::tower_session_jwt::SessionStore::find_by_token(&$inner, hash).await;
                $($find_after)?
                found
            }
            async fn get(
                &self,
                id: &::tower_session_jwt::session::SessionId,
            ) -> Result<Option<::tower_session_jwt::Session>, ::tower_session_jwt::StoreError>
            {
                let $this = self;
                $($every)?
                ::tower_session_jwt::SessionStore::get(&$inner, id).await
            }
            async fn list_by_user(
                &self,
                user_id: &str,
                page: &::tower_session_jwt::store::PageRequest,
            ) -> Result<::tower_session_jwt::store::SessionPage, ::tower_session_jwt::StoreError>
            {
                let $this = self;
                $($every)?
                ::tower_session_jwt::SessionStore::list_by_user(&$inner, user_id, page).await
            }
            async fn update(
                &self,
                update: &::tower_session_jwt::store::SessionUpdate,
            ) -> Result<::tower_session_jwt::store::UpdateOutcome, ::tower_session_jwt::StoreError>
            {
                let $this = self;
                $($every)?
                $($update_before)?
                ::tower_session_jwt::SessionStore::update(&$inner, update).await
            }
            async fn revoke(
                &self,
                id: &::tower_session_jwt::session::SessionId,
            ) -> Result<Option<::tower_session_jwt::Session>, ::tower_session_jwt::StoreError>
            {
                let $this = self;
                $($every)?
                ::tower_session_jwt::SessionStore::revoke(&$inner, id).await
            }
            async fn revoke_all(
                &self,
                user_id: &str,
                except: Option<&::tower_session_jwt::session::SessionId>,
            ) -> Result<Vec<::tower_session_jwt::session::SessionId>, ::tower_session_jwt::StoreError>
            {
                let $this = self;
                $($every)?
                ::tower_session_jwt::SessionStore::revoke_all(&$inner, user_id, except).await
            }
            $(fn $name $args -> $ret $body)*
        }
    };
}

#[allow(unused_imports)]
pub(crate) use forward_session_store;
