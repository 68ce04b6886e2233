//! The store's tables, their versioned migrations, and the SQL the store runs against them.
//!
//! Every statement names its tables with the schema, so the connection's `search_path` never
//! matters; schema names are checked (`[a-z_][a-z0-9_]{0,62}`) before they are spliced into SQL.

use std::time::Duration;

use sqlx::{Connection as _, Executor as _, PgPool};

use super::error::{bounded, map_err};
use crate::store::StoreError;

/// The schema the store uses unless told otherwise.
pub(super) const DEFAULT_SCHEMA: &str = "tower_session_jwt";

/// One step of the schema's history. Applied in order, each at most once, inside the migration
/// transaction; `{schema}` stands for the (checked) schema name.
struct Migration {
    version: i32,
    description: &'static str,
    sql: &'static str,
}

/// The schema's history. Never edit a published step: append a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "sessions, revocation feed, feed state",
        sql: r#"
CREATE TABLE {schema}.sessions (
    id          text        PRIMARY KEY,
    token_hash  bytea       NOT NULL UNIQUE,
    user_id     text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    session     json        NOT NULL
);
CREATE INDEX sessions_user_id ON {schema}.sessions (user_id);
CREATE INDEX sessions_expires_at ON {schema}.sessions (expires_at);

CREATE TABLE {schema}.revocations (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    event       json        NOT NULL
);
CREATE INDEX revocations_created_at ON {schema}.revocations (created_at);

CREATE TABLE {schema}.feed_state (
    singleton        boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch            bigint      NOT NULL,
    trimmed_through  bigint      NOT NULL DEFAULT 0,
    trimmed_until    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.feed_state (epoch)
    VALUES (floor(random() * 9007199254740991)::bigint + 1);
"#,
    },
    // The listing's sort key (`started_at` in Unix milliseconds, rounded down like
    // `store::started_ms`) and the record's version (for the compare-and-swap of `update`) as
    // columns, and the index that pages a user's sessions newest first and serves every other
    // by-user query, so the plain user index goes. Ids sort byte-wise (`COLLATE "C"`), as the
    // listing's order and its cursors compare them, whatever the database's collation.
    //
    // Existing rows get both from their JSON. `started_at` is the RFC 3339 text the crate
    // writes; it is taken apart with integer arithmetic rather than cast, since a cast rounds
    // to microseconds (which can carry into the next millisecond) and fails on an impossible
    // date, which would stop every instance from starting over one damaged row. A row whose
    // JSON is no such record keeps 0 in both; it cannot be read anyway (it is reported as
    // corrupt).
    Migration {
        version: 2,
        description: "started_ms and version columns, listing index",
        sql: r#"
ALTER TABLE {schema}.sessions
    ADD COLUMN started_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN version bigint NOT NULL DEFAULT 0;

UPDATE {schema}.sessions AS s SET started_ms = p.ms
FROM (
    SELECT id,
        ((make_date(substr(t, 1, 4)::int, 1, 1)
            + make_interval(months => substr(t, 6, 2)::int - 1))::date
          - date '1970-01-01' + substr(t, 9, 2)::int - 1)::bigint * 86400000
        + (substr(t, 12, 2)::int * 3600 + substr(t, 15, 2)::int * 60
           + substr(t, 18, 2)::int)::bigint * 1000
        + rpad(coalesce(substring(t FROM '^.{19}\.(\d{1,3})'), ''), 3, '0')::int
        - CASE WHEN zone IN ('Z', 'z') THEN 0
               ELSE (CASE WHEN left(zone, 1) = '-' THEN -1 ELSE 1 END)
                    * (substr(zone, 2, 2)::int * 3600000 + substr(zone, 5, 2)::int * 60000)
          END AS ms
    FROM (
        SELECT id, t, substring(t FROM '([Zz]|[+-]\d{2}:\d{2})$') AS zone
        FROM (SELECT id, session->>'started_at' AS t FROM {schema}.sessions) AS raw
        WHERE t ~ '^(?!0000)\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$'
    ) AS parsed
) AS p
WHERE s.id = p.id;

UPDATE {schema}.sessions SET version = (session->>'version')::bigint
WHERE json_typeof(session->'version') = 'number' AND session->>'version' ~ '^\d{1,18}$';

CREATE INDEX sessions_user_started
    ON {schema}.sessions (user_id, started_ms DESC, id COLLATE "C" DESC);
DROP INDEX {schema}.sessions_user_id;
"#,
    },
];

/// The newest schema version this build knows.
pub(super) const LATEST_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Whether `name` may be used as the store's schema: a lowercase, unquoted identifier.
pub(super) fn valid_schema_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && name.len() <= 63
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// A 63-bit key derived from the schema name, for advisory locks and channel names: the same on
/// every instance and every version of this crate (the first 8 bytes of
/// `SHA-256("tower-session-jwt/<purpose>/<schema>")`, top bit cleared).
pub(super) fn derived_key(purpose: &str, schema: &str) -> i64 {
    let input = format!("tower-session-jwt/{purpose}/{schema}");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    (u64::from_be_bytes(first) >> 1) as i64
}

/// The top 32 bits of a derived key, as one key of a two-key advisory lock.
fn high_32(key: i64) -> i32 {
    (key >> 31) as i32
}

/// `$n` (Unix microseconds, `bigint`) as a `timestamptz`, exactly.
macro_rules! ts {
    ($n:literal) => {
        concat!(
            "(timestamptz 'epoch' + $",
            $n,
            "::bigint * interval '1 microsecond')"
        )
    };
}

/// Every statement the store runs, with the schema spliced in once.
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) schema: String,
    /// Serialises feed appends; see the module docs of the store.
    pub(super) feed_lock_key: i64,
    /// Serialises migrations of this schema.
    pub(super) migration_lock_key: i64,
    /// The `LISTEN` / `NOTIFY` channel of the feed.
    pub(super) channel: String,
    /// The first key of the two-key advisory locks that serialise the creations of one user's
    /// sessions (the second is derived from the user id; see [`Sql::user_lock`]).
    pub(super) user_lock_space: i32,

    pub(super) create: String,
    pub(super) lock_user: String,
    pub(super) live_ids_oldest_first: String,
    pub(super) create_evicting: String,
    pub(super) find_by_token: String,
    pub(super) get: String,
    pub(super) list_first: String,
    pub(super) list_after: String,
    pub(super) update: String,
    pub(super) live_row_of: String,
    pub(super) revoke: String,
    pub(super) revoke_all: String,
    pub(super) delete_others: String,
    pub(super) append_events: String,
    pub(super) read_feed: String,
    pub(super) trim_feed: String,
    pub(super) purge_expired: String,
}

impl Sql {
    /// The advisory lock (two 32-bit keys) that serialises creating sessions of `user_id` in
    /// this schema. Two-key locks live in a key space of their own, apart from the one-key
    /// locks of the feed and of migrations; users whose keys collide only wait for each other.
    pub(super) fn user_lock(&self, user_id: &str) -> (i32, i32) {
        (self.user_lock_space, high_32(derived_key("user", user_id)))
    }

    pub(super) fn new(schema: &str) -> Self {
        let s = schema;
        Self {
            schema: schema.to_owned(),
            feed_lock_key: derived_key("feed", schema),
            migration_lock_key: derived_key("migrate", schema),
            channel: format!("tsj_feed_{:016x}", derived_key("channel", schema)),
            user_lock_space: high_32(derived_key("user-lock", schema)),

            create: format!(
                "INSERT INTO {s}.sessions \
                   (id, token_hash, user_id, expires_at, started_ms, version, session) \
                 VALUES ($1, $2, $3, {}, $5, $6, $7::json) ON CONFLICT DO NOTHING",
                ts!("4")
            ),
            // A statement of its own, before any read of the transaction: in READ COMMITTED
            // each statement reads a snapshot taken when it starts, so what follows sees every
            // creation that committed while this one waited.
            lock_user: "SELECT pg_advisory_xact_lock($1::int4, $2::int4)".to_owned(),
            live_ids_oldest_first: format!(
                "SELECT id FROM {s}.sessions WHERE user_id = $1 AND expires_at > {} \
                 ORDER BY started_ms, id COLLATE \"C\"",
                ts!("2")
            ),
            // Deletes the sessions to evict ($8), inserts the new one, and appends one event
            // (from $9, in the order of $8) for each eviction that deleted a row, taking the
            // feed lock first (as in `revoke`) only when there is one. Answers the rows inserted,
            // the events appended, and the ids evicted.
            create_evicting: format!(
                "WITH evicted AS ( \
                   DELETE FROM {s}.sessions WHERE id = ANY($8::text[]) RETURNING id), \
                 inserted AS ( \
                   INSERT INTO {s}.sessions \
                     (id, token_hash, user_id, expires_at, started_ms, version, session) \
                   VALUES ($1, $2, $3, {expires}, $5, $6, $7::json) \
                   ON CONFLICT DO NOTHING RETURNING id), \
                 serialised AS ( \
                   SELECT pg_advisory_xact_lock($10) WHERE EXISTS (SELECT 1 FROM evicted)), \
                 appended AS ( \
                   INSERT INTO {s}.revocations (created_at, event) \
                   SELECT {now}, e.event::json \
                   FROM serialised, unnest($8::text[], $9::text[]) WITH ORDINALITY AS e(id, event, n) \
                   WHERE e.id IN (SELECT id FROM evicted) ORDER BY e.n RETURNING id), \
                 notified AS ( \
                   SELECT pg_notify($12, max(id)::text) FROM appended HAVING count(*) > 0) \
                 SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM appended), \
                   (SELECT count(*) FROM notified), \
                   coalesce((SELECT array_agg(id) FROM evicted), '{{}}')",
                expires = ts!("4"),
                now = ts!("11")
            ),
            find_by_token: format!(
                "SELECT id, user_id, session::text, version FROM {s}.sessions \
                 WHERE token_hash = $1 AND expires_at > {}",
                ts!("2")
            ),
            get: format!(
                "SELECT id, user_id, session::text, version FROM {s}.sessions \
                 WHERE id = $1 AND expires_at > {}",
                ts!("2")
            ),
            // Walks `sessions_user_started` in its order and stops one row past the page.
            list_first: format!(
                "SELECT id, user_id, session::text, version, started_ms FROM {s}.sessions \
                 WHERE user_id = $1 AND expires_at > {} \
                 ORDER BY started_ms DESC, id COLLATE \"C\" DESC LIMIT $3",
                ts!("2")
            ),
            // After the cursor ($3, $4): `started_ms <= $3` starts the index range at the
            // cursor's millisecond; the rest drops what that millisecond already listed.
            list_after: format!(
                "SELECT id, user_id, session::text, version, started_ms FROM {s}.sessions \
                 WHERE user_id = $1 AND expires_at > {} \
                   AND started_ms <= $3 AND (started_ms < $3 OR id COLLATE \"C\" < $4) \
                 ORDER BY started_ms DESC, id COLLATE \"C\" DESC LIMIT $5",
                ts!("2")
            ),
            // A compare-and-swap on the version, of a live row of the same user and start;
            // with $10, the feed lock and the event ($11) in the same statement, as in `revoke`.
            update: format!(
                "WITH updated AS ( \
                   UPDATE {s}.sessions SET session = $3::json, expires_at = {expires}, \
                     version = $6, token_hash = coalesce($7, token_hash) \
                   WHERE id = $1 AND user_id = $2 AND started_ms = $8 AND version = $6 - 1 \
                     AND expires_at > {now} \
                   RETURNING id), \
                 serialised AS ( \
                   SELECT pg_advisory_xact_lock($9) FROM updated WHERE $10), \
                 appended AS ( \
                   INSERT INTO {s}.revocations (created_at, event) \
                   SELECT {now}, $11::json FROM serialised RETURNING id), \
                 notified AS ( \
                   SELECT pg_notify($12, id::text) FROM appended) \
                 SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM notified)",
                expires = ts!("4"),
                now = ts!("5")
            ),
            live_row_of: format!(
                "SELECT user_id, started_ms, version FROM {s}.sessions \
                 WHERE id = $1 AND expires_at > {}",
                ts!("2")
            ),
            // One statement, so one transaction, committed when it ends: delete the session,
            // and if it was live take the feed lock, then append the event (the INSERT reads its
            // row from the CTE that takes the lock, so the id is allocated with the lock held)
            // and notify. Answers nothing for an unknown id.
            revoke: format!(
                "WITH gone AS ( \
                   DELETE FROM {s}.sessions WHERE id = $1 \
                   RETURNING id, user_id, session::text AS session, version, \
                     expires_at > {now} AS live), \
                 serialised AS ( \
                   SELECT pg_advisory_xact_lock($3) FROM gone WHERE live), \
                 appended AS ( \
                   INSERT INTO {s}.revocations (created_at, event) \
                   SELECT {now}, $4::json FROM serialised RETURNING id), \
                 notified AS ( \
                   SELECT pg_notify($5, id::text) FROM appended) \
                 SELECT id, user_id, session, version, live, (SELECT count(*) FROM notified) \
                 FROM gone",
                now = ts!("2")
            ),
            // Likewise for every session of a user: a session event for each live one (its id
            // spliced between $6 and $7, the encoding of a session revocation around its id;
            // an id that is not a session id gets none, and the caller reports it), then the
            // user event ($4), appended whether or not any session was live. Answers one row:
            // the events appended, the live ids, and whether the readers were woken.
            revoke_all: format!(
                "WITH gone AS ( \
                   DELETE FROM {s}.sessions WHERE user_id = $1 \
                   RETURNING id, expires_at > {now} AS live), \
                 serialised AS ( \
                   SELECT pg_advisory_xact_lock($3)), \
                 events AS ( \
                   SELECT 0 AS n, id, $6 || to_json(id)::text || $7 AS event FROM gone \
                   WHERE live AND id ~ '^[A-Za-z0-9_-]{{1,{max_id}}}$' \
                   UNION ALL SELECT 1, '', $4), \
                 appended AS ( \
                   INSERT INTO {s}.revocations (created_at, event) \
                   SELECT {now}, e.event::json FROM serialised, events e \
                   ORDER BY e.n, e.id RETURNING id), \
                 notified AS ( \
                   SELECT pg_notify($5, max(id)::text) FROM appended HAVING count(*) > 0) \
                 SELECT (SELECT count(*) FROM appended), \
                   coalesce(array_agg(id) FILTER (WHERE live), '{{}}'), \
                   (SELECT count(*) FROM notified) FROM gone",
                now = ts!("2"),
                max_id = crate::data::session::MAX_SESSION_ID_LEN
            ),
            // Every session of a user but one ($2), answering which were live.
            delete_others: format!(
                "DELETE FROM {s}.sessions WHERE user_id = $1 AND id <> $2 \
                 RETURNING id, expires_at > {} AS live",
                ts!("3")
            ),
            // Appends events ($3, in order) under the feed lock, and wakes the readers once.
            append_events: format!(
                "WITH serialised AS ( \
                   SELECT pg_advisory_xact_lock($1)), \
                 appended AS ( \
                   INSERT INTO {s}.revocations (created_at, event) \
                   SELECT {}, e.event::json \
                   FROM serialised, unnest($3::text[]) WITH ORDINALITY AS e(event, n) \
                   ORDER BY e.n RETURNING id), \
                 notified AS ( \
                   SELECT pg_notify($4, max(id)::text) FROM appended HAVING count(*) > 0) \
                 SELECT (SELECT count(*) FROM appended), (SELECT count(*) FROM notified)",
                ts!("2")
            ),
            // One snapshot: the trim state, the instant from which the log is complete (it was
            // made, or its newest trimmed event, whichever is later), the highest id ever handed
            // out, and the batch.
            read_feed: format!(
                "SELECT st.epoch, st.trimmed_through, \
                   (extract(epoch FROM greatest( \
                      st.created_at, st.trimmed_until + interval '1 microsecond')) \
                    * 1000000)::bigint, \
                   (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END \
                      FROM {s}.revocations_id_seq), \
                   r.id, r.event::text \
                 FROM {s}.feed_state st \
                 LEFT JOIN LATERAL ( \
                   SELECT id, event FROM {s}.revocations WHERE id > $1 ORDER BY id LIMIT $2 \
                 ) r ON true \
                 ORDER BY r.id"
            ),
            // Trims a prefix of the log (by id) made only of events older than the edge, at most
            // $2 of them, and records in the same statement (so the same transaction) how far
            // the log was trimmed.
            trim_feed: format!(
                "WITH doomed AS ( \
                   SELECT id FROM {s}.revocations \
                   WHERE id < coalesce( \
                     (SELECT min(id) FROM {s}.revocations WHERE created_at >= {}), \
                     9223372036854775807) \
                   ORDER BY id LIMIT $2), \
                 gone AS ( \
                   DELETE FROM {s}.revocations r USING doomed WHERE r.id = doomed.id \
                   RETURNING r.id, r.created_at), \
                 moved AS ( \
                   UPDATE {s}.feed_state SET \
                     trimmed_through = greatest(trimmed_through, (SELECT max(id) FROM gone)), \
                     trimmed_until = greatest(trimmed_until, (SELECT max(created_at) FROM gone)) \
                   WHERE EXISTS (SELECT 1 FROM gone)) \
                 SELECT count(*) FROM gone",
                ts!("1")
            ),
            purge_expired: format!(
                "WITH gone AS ( \
                   DELETE FROM {s}.sessions WHERE id IN ( \
                     SELECT id FROM {s}.sessions WHERE expires_at <= {} LIMIT $2) \
                   RETURNING 1) \
                 SELECT count(*) FROM gone",
                ts!("1")
            ),
        }
    }
}

/// Brings the schema to [`LATEST_VERSION`].
///
/// A quick look first: an up-to-date schema is left alone without taking any lock. Otherwise
/// one transaction takes the schema's migration advisory lock (so instances starting together
/// migrate one after the other, and the later ones find nothing left to do), creates the schema
/// if it is missing, and applies every step not yet recorded in `schema_migrations`.
pub(super) async fn migrate(pool: &PgPool, sql: &Sql, limit: Duration) -> Result<(), StoreError> {
    if current_version(pool, sql, limit).await? == Some(LATEST_VERSION) {
        return Ok(());
    }
    let s = &sql.schema;
    // Waiting for another instance's migration may take a while: allow it more than a query.
    bounded(limit.max(Duration::from_secs(30)) * 2, async {
        let mut conn = pool.acquire().await.map_err(map_err)?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        tx.execute("SET LOCAL statement_timeout = '30s'")
            .await
            .map_err(map_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(sql.migration_lock_key)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // A schema made beforehand (by an administrator) needs no right to create schemas.
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname = $1")
                .bind(s)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        if exists.is_none() {
            tx.execute(format!("CREATE SCHEMA {s}").as_str())
                .await
                .map_err(map_err)?;
        }
        tx.execute(
            format!(
                "CREATE TABLE IF NOT EXISTS {s}.schema_migrations ( \
                   version integer PRIMARY KEY, \
                   description text NOT NULL, \
                   applied_at timestamptz NOT NULL DEFAULT now())"
            )
            .as_str(),
        )
        .await
        .map_err(map_err)?;
        let applied: Option<i32> =
            sqlx::query_scalar(&format!("SELECT max(version) FROM {s}.schema_migrations"))
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        let applied = applied.unwrap_or(0);
        check_known(applied)?;
        for step in MIGRATIONS.iter().filter(|m| m.version > applied) {
            tx.execute(step.sql.replace("{schema}", s).as_str())
                .await
                .map_err(map_err)?;
            sqlx::query(&format!(
                "INSERT INTO {s}.schema_migrations (version, description) VALUES ($1, $2)"
            ))
            .bind(step.version)
            .bind(step.description)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    })
    .await
}

/// The schema's recorded version, or `None` when the schema or its bookkeeping is missing.
async fn current_version(
    pool: &PgPool,
    sql: &Sql,
    limit: Duration,
) -> Result<Option<i32>, StoreError> {
    let query = format!("SELECT max(version) FROM {}.schema_migrations", sql.schema);
    let result: Result<Option<i32>, sqlx::Error> = bounded(limit, async {
        Ok(sqlx::query_scalar(&query).fetch_one(pool).await)
    })
    .await?;
    match result {
        Ok(version) => {
            if let Some(version) = version {
                check_known(version)?;
            }
            Ok(version)
        }
        // undefined_table, invalid_schema_name: not migrated yet.
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P01" | "3F000")) => {
            Ok(None)
        }
        Err(e) => Err(map_err(e)),
    }
}

/// Refuses a schema migrated by a newer build: its tables may not mean what this build thinks.
fn check_known(version: i32) -> Result<(), StoreError> {
    if version > LATEST_VERSION {
        return Err(StoreError::Backend(
            format!(
                "the session schema is at version {version}, newer than this build knows \
                 ({LATEST_VERSION}); upgrade tower-session-jwt"
            )
            .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["tower_session_jwt", "_x", "a1", &"a".repeat(63)] {
            assert!(valid_schema_name(good), "{good:?}");
        }
        for bad in [
            "",
            "1a",
            "A",
            "a-b",
            "a.b",
            "a\"b",
            "a b",
            &"a".repeat(64),
            "é",
        ] {
            assert!(!valid_schema_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn derived_keys_are_stable_and_distinct() {
        // Every instance, whatever its version, must derive the same keys.
        assert_eq!(derived_key("feed", "s"), derived_key("feed", "s"));
        assert_ne!(derived_key("feed", "s"), derived_key("feed", "t"));
        assert_ne!(derived_key("feed", "s"), derived_key("migrate", "s"));
        assert!(derived_key("feed", "s") >= 0);
        let sql = Sql::new("tower_session_jwt");
        assert!(sql.channel.len() <= 63);
        assert!(sql.read_feed.contains("tower_session_jwt.revocations"));
    }

    #[test]
    fn migrations_ascend() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert!(MIGRATIONS[0].version >= 1);
    }
}
