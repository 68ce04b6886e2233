//! The Lua scripts of the Redis store: one per write (atomic) and per multi-key read (one round
//! trip). Key and argument layouts are documented on each; the callers are in `mod.rs` and
//! `feed.rs`.

use std::sync::LazyLock;

use redis::Script;

/// `create`: refuses an existing token or id, writes the three keys with the session's TTL, and
/// trims the user's index.
///
/// KEYS: token key, session key, user index. ARGV: session id, token hash, session JSON, TTL ms,
/// `expires_at` ms, now ms, user key. Returns 1, or 0 when the id or token already exists.
pub(super) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  redis.call('HSET', KEYS[2], 'session', ARGV[3], 'token', ARGV[2], 'user', ARGV[7], 'exp', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[6])
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIRE', KEYS[3], string.format('%d', math.max(1, tonumber(last[2]) - tonumber(ARGV[6]))))
end
return 1
"#,
    )
});

/// `find_by_token`: token key → session id → the session's `session` and `token` fields.
///
/// KEYS: token key. ARGV: session key prefix. Returns nil or `[session JSON, token hash]`.
pub(super) static FIND_BY_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local sid = redis.call('GET', KEYS[1])
if not sid then return false end
local rec = redis.call('HMGET', ARGV[1] .. sid, 'session', 'token')
if not rec[1] then return false end
return rec
"#,
    )
});

/// `list_by_user`: the `session` field of every unexpired id in the user's index.
///
/// KEYS: user index. ARGV: now ms, session key prefix. Returns an array of session JSON.
pub(super) static LIST_BY_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local out = {}
for _, id in ipairs(ids) do
  local s = redis.call('HGET', ARGV[2] .. id, 'session')
  if s then out[#out + 1] = s end
end
return out
"#,
    )
});

/// `update`: replaces a live session's JSON and expiry, re-sets the TTLs of its session and token
/// keys and its index score; does nothing when the session is gone.
///
/// KEYS: session key, user index. ARGV: session id, session JSON, TTL ms, `expires_at` ms, now ms,
/// token key prefix, user key. Returns 1 (updated), 0 (no live session), -1 (other user), -2
/// (damaged record).
pub(super) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local rec = redis.call('HMGET', KEYS[1], 'token', 'user', 'exp')
local exp = tonumber(rec[3])
if not rec[1] or not exp then return -2 end
if exp <= tonumber(ARGV[5]) then return 0 end
if rec[2] ~= ARGV[7] then return -1 end
local tok = ARGV[6] .. rec[1]
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('HSET', KEYS[1], 'session', ARGV[2], 'exp', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', tok, ttl)
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
else
  redis.call('DEL', KEYS[1], tok)
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIRE', KEYS[2], string.format('%d', math.max(1, tonumber(last[2]) - tonumber(ARGV[5]))))
end
return 1
"#,
    )
});

/// Lua helpers for the feed stream, shared by the scripts that write it.
///
/// Readers detect lost events by the stream's `max-deleted-entry-id` (a cursor older than it may
/// have missed something; see `feed.rs`). Redis raises it on `XDEL`, but not when trimming, so:
///
/// * `ensure_stream` creates a missing stream empty, with `max-deleted-entry-id` at its creation
///   id: a cursor from a stream that was lost (Redis restarted empty, flushed) is older than that.
/// * `append_event` trims exactly (`MINID`, not `~`) and records the newest entry it trimmed as
///   `max-deleted-entry-id` (`XSETID … MAXDELETEDID`), never lowering it.
const FEED_LUA: &str = r#"
local function id_cmp_part(a, b)
  a = (string.gsub(a, '^0+', ''))
  b = (string.gsub(b, '^0+', ''))
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

local function id_less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  local c = id_cmp_part(am, bm)
  if c ~= 0 then return c < 0 end
  return id_cmp_part(as, bs) < 0
end

local function stream_info(stream, field)
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == field then return info[i + 1] end
  end
  return nil
end

local function ensure_stream(stream)
  if redis.call('EXISTS', stream) == 1 then return end
  local id = redis.call('XADD', stream, 'MAXLEN', '0', '*', 'created', '1')
  redis.call('XSETID', stream, id, 'MAXDELETEDID', id)
end

local function append_event(stream, event, retention_ms)
  ensure_stream(stream)
  local id = redis.call('XADD', stream, '*', 'event', event)
  local ms = tonumber(string.match(id, '^(%d+)-'))
  if not ms then return end
  local min_id = string.format('%d', math.max(0, ms - retention_ms))
  local newest_old = redis.call('XREVRANGE', stream, '(' .. min_id, '-', 'COUNT', 1)[1]
  if not newest_old then return end
  redis.call('XTRIM', stream, 'MINID', min_id)
  local deleted = stream_info(stream, 'max-deleted-entry-id')
  if not deleted or id_less(deleted, newest_old[1]) then
    redis.call('XSETID', stream, id, 'MAXDELETEDID', newest_old[1])
  end
end
"#;

/// Creates the feed stream if it is missing (at connect time), so that a missing stream means
/// lost data.
///
/// KEYS: feed stream. Returns 1, or 0 when Redis does not report `max-deleted-entry-id`
/// (before 7.0), without which gaps cannot be detected.
pub(super) static ENSURE_FEED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FEED_LUA}{}",
        r#"
ensure_stream(KEYS[1])
if stream_info(KEYS[1], 'max-deleted-entry-id') then return 1 end
return 0
"#
    ))
});

/// `revoke`: deletes a session's keys and index entry and, if it was live, appends the revocation
/// event to the feed.
///
/// KEYS: session key, feed stream. ARGV: session id, now ms, event JSON, token key prefix, user
/// index prefix, retention ms. Returns the session JSON if a live session was revoked (an empty
/// string if its record was damaged; the event is published all the same), else nil.
pub(super) static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FEED_LUA}{}",
        r#"
local rec = redis.call('HMGET', KEYS[1], 'session', 'token', 'user', 'exp')
if redis.call('DEL', KEYS[1]) == 0 then return false end
if rec[2] then redis.call('DEL', ARGV[4] .. rec[2]) end
if rec[3] then redis.call('ZREM', ARGV[5] .. rec[3], ARGV[1]) end
local exp = tonumber(rec[4])
if exp and exp <= tonumber(ARGV[2]) then return false end
-- Live, or a damaged record that might be: publish, and let the caller see the damage.
append_event(KEYS[2], ARGV[3], tonumber(ARGV[6]))
return rec[1] or ''
"#
    ))
});

/// `revoke_all`: deletes every session in a user's index, the index itself, and appends the
/// user's revocation event to the feed (always, so a session being created concurrently
/// elsewhere is cut off too).
///
/// KEYS: user index, feed stream. ARGV: now ms, event JSON, session key prefix, token key prefix,
/// retention ms. Returns the ids of the live sessions deleted.
pub(super) static REVOKE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FEED_LUA}{}",
        r#"
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local now = tonumber(ARGV[1])
local out = {}
for _, id in ipairs(ids) do
  local skey = ARGV[3] .. id
  local rec = redis.call('HMGET', skey, 'token', 'exp')
  if redis.call('DEL', skey) == 1 then
    if rec[1] then redis.call('DEL', ARGV[4] .. rec[1]) end
    local exp = tonumber(rec[2])
    if not exp or exp > now then out[#out + 1] = id end
  end
end
redis.call('DEL', KEYS[1])
append_event(KEYS[2], ARGV[2], tonumber(ARGV[5]))
return out
"#
    ))
});

/// A feed read's catch-up step: the gap evidence and the next entries, in one atomic step, so
/// that no trim can fall between the check and the range.
///
/// KEYS: feed stream. ARGV: the cursor (an entry id; empty to read from the oldest entry), the
/// most entries to return. Returns `[0, redis now ms]` when the stream does not exist, else
/// `[1, redis now ms, last-generated-id, max-deleted-entry-id, entries]` (`XRANGE` format).
pub(super) static FEED_READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, now_ms} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last, deleted = '', ''
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1]
  elseif info[i] == 'max-deleted-entry-id' then deleted = info[i + 1] end
end
local start = '-'
if ARGV[1] ~= '' then start = '(' .. ARGV[1] end
return {1, now_ms, last, deleted, redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', ARGV[2])}
"#,
    )
});
