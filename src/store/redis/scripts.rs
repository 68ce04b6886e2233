//! The Lua scripts of the Redis store: one per write (atomic) and per multi-key read (one round
//! trip). Key and argument layouts are documented on each; the callers are in `mod.rs` and
//! `feed.rs`.

use std::sync::LazyLock;

use redis::Script;

/// Lua helpers for a user's two indexes, shared by the scripts that read or write them.
///
/// A user has an expiry index (`{P}u:`, ids scored by `expires_at` ms), which finds what has
/// expired, and a listing index (`{P}us:`, ids scored by `started_at` ms), which pages newest
/// first and finds the oldest sessions for the limit. Every script that adds or removes a
/// session keeps both in step, so they hold the same ids. Where they do not (sessions stored
/// before the listing index existed, or written by an older version of this crate during a
/// rolling upgrade), `sync_started` rebuilds the listing index from the expiry index, which
/// stays the authority on which sessions a user has.
///
/// * `purge` drops the expired ids from both indexes (cost: what has expired).
/// * `sync_started` compares the two cardinalities (O(1)) and, only when they differ, removes
///   the ids the expiry index lacks from the listing index and adds the ones only the expiry
///   index has, each scored by the record's `start` field or, for a record stored before that
///   field existed, by the `started_at` of its JSON (an id whose record is gone leaves the
///   expiry index instead). It returns false when such a record's start cannot be read (a
///   corrupt record).
/// * `started_ms_of` reads `started_at` (RFC 3339, as the crate writes it) from a session's
///   JSON as Unix milliseconds truncated toward zero, exactly as `store::started_ms` does.
/// * `id_less` orders session ids byte by byte, as Redis orders members of equal score (Lua's
///   `<` on strings follows the server's collation locale, which need not be bytewise).
/// * `delete_session` deletes a session's hash, its token key (unless the token index lives in
///   another slot: an empty token key prefix) and its index entries, and says whether it was
///   live.
/// * `drop_dangling` removes index ids whose session hash is gone (evicted under memory
///   pressure, deleted by hand), so that they do not count against the session limit.
/// * `refresh_ttl` lets both indexes expire with the user's last session.
const INDEX_LUA: &str = r#"
local function purge(exp_key, start_key, now)
  local gone = redis.call('ZRANGEBYSCORE', exp_key, '-inf', now)
  for i = 1, #gone, 500 do
    redis.call('ZREM', start_key, unpack(gone, i, math.min(i + 499, #gone)))
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', exp_key, '-inf', now) end
end

local function started_ms_of(json)
  local ok, rec = pcall(cjson.decode, json)
  if not ok or type(rec) ~= 'table' or type(rec.started_at) ~= 'string' then return nil end
  local y, mo, d, h, mi, s, rest = string.match(rec.started_at,
    '^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$')
  if not y then return nil end
  y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or s > 60 then return nil end
  local ms, below_ms = 0, false
  local frac = string.match(rest, '^%.(%d+)')
  if frac then
    ms = tonumber(string.sub(frac .. '00', 1, 3))
    below_ms = string.find(string.sub(frac, 4), '[1-9]') ~= nil
    rest = string.sub(rest, #frac + 2)
  end
  local offset = 0
  if rest ~= 'Z' and rest ~= 'z' then
    local sign, oh, om = string.match(rest, '^([%+%-])(%d%d):(%d%d)$')
    if not sign then return nil end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60
    if sign == '-' then offset = -offset end
  end
  -- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local secs = (era * 146097 + doe - 719468) * 86400 + h * 3600 + mi * 60 + s - offset
  -- Before 1970 the nanoseconds are negative, and truncating toward zero rounds them up.
  if secs < 0 and below_ms then ms = ms + 1 end
  return secs * 1000 + ms
end

local function sync_started(exp_key, start_key, session_prefix)
  if redis.call('ZCARD', exp_key) == redis.call('ZCARD', start_key) then return true end
  local extra = redis.call('ZDIFF', 2, start_key, exp_key)
  for i = 1, #extra, 500 do
    redis.call('ZREM', start_key, unpack(extra, i, math.min(i + 499, #extra)))
  end
  local missing = redis.call('ZDIFF', 2, exp_key, start_key)
  for _, id in ipairs(missing) do
    local rec = redis.call('HMGET', session_prefix .. id, 'start', 'session')
    if not rec[2] then
      -- The session itself is gone: a dangling id, not a session to list.
      redis.call('ZREM', exp_key, id)
    else
      local ms = tonumber(rec[1]) or started_ms_of(rec[2])
      if not ms then return false end
      redis.call('ZADD', start_key, string.format('%d', ms), id)
    end
  end
  local pttl = redis.call('PTTL', exp_key)
  if pttl > 0 then
    redis.call('PEXPIRE', start_key, pttl)
  elseif pttl == -2 then
    redis.call('DEL', start_key)
  end
  return true
end

local function id_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function delete_session(session_prefix, token_prefix, exp_key, start_key, id, now)
  local skey = session_prefix .. id
  local rec = redis.call('HMGET', skey, 'token', 'exp')
  local existed = redis.call('DEL', skey) == 1
  if rec[1] and token_prefix ~= '' then redis.call('DEL', token_prefix .. rec[1]) end
  redis.call('ZREM', exp_key, id)
  redis.call('ZREM', start_key, id)
  local exp = tonumber(rec[2])
  return existed and (not exp or exp > now)
end

local function drop_dangling(exp_key, start_key, session_prefix)
  local ids = redis.call('ZRANGE', exp_key, 0, -1)
  for _, id in ipairs(ids) do
    if redis.call('EXISTS', session_prefix .. id) == 0 then
      redis.call('ZREM', exp_key, id)
      redis.call('ZREM', start_key, id)
    end
  end
end

local function refresh_ttl(exp_key, start_key, now)
  local last = redis.call('ZRANGE', exp_key, -1, -1, 'WITHSCORES')
  if last[2] then
    local ttl = string.format('%d', math.max(1, tonumber(last[2]) - now))
    redis.call('PEXPIRE', exp_key, ttl)
    redis.call('PEXPIRE', start_key, ttl)
  else
    redis.call('DEL', start_key)
  end
end
"#;

/// `create`: refuses an existing token or id; keeps the user within the session limit (the
/// decision of [`SessionLimit::to_evict`](crate::store::SessionLimit::to_evict), taken here on
/// the live count so that concurrent creates cannot exceed it), revoking the oldest sessions
/// into the feed or refusing; then writes the three keys with the session's TTL and adds the
/// session to both user indexes.
///
/// KEYS: token key, session key, expiry index, listing index, feed stream. ARGV: session id,
/// token hash, session JSON, TTL ms, `expires_at` ms, now ms, user key, `started_at` ms,
/// version, the limit (empty for none), `evict` or `refuse`, session key prefix, token key
/// prefix, a revocation event's JSON before and after its session id, retention ms.
///
/// An empty token key prefix means the token index lives in another slot (the Cluster store
/// keeps it by token hash, not by user) and is written by the caller: the script then neither
/// checks nor writes nor deletes token keys, and KEYS[1] is the session key again (every key
/// declared must be in the script's slot).
///
/// Returns `[1, evicted ids…]` (oldest first), `[0]` when the id or token already exists, `[2]`
/// when the limit refuses, `[3]` when a record's start cannot be read to find the oldest.
pub(super) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FEED_LUA}{INDEX_LUA}{}",
        r#"
local own_token = ARGV[13] ~= ''
if (own_token and redis.call('EXISTS', KEYS[1]) == 1) or redis.call('EXISTS', KEYS[2]) == 1 then
  return {0}
end
local now = tonumber(ARGV[6])
purge(KEYS[3], KEYS[4], now)
local evicted = {1}
local max = tonumber(ARGV[10])
if max then
  local live = redis.call('ZCARD', KEYS[3])
  if live >= max then
    drop_dangling(KEYS[3], KEYS[4], ARGV[12])
    live = redis.call('ZCARD', KEYS[3])
  end
  if live >= max then
    if ARGV[11] ~= 'evict' then return {2} end
    if not sync_started(KEYS[3], KEYS[4], ARGV[12]) then return {3} end
    local oldest = redis.call('ZRANGE', KEYS[4], 0, live - max)
    for _, id in ipairs(oldest) do
      delete_session(ARGV[12], ARGV[13], KEYS[3], KEYS[4], id, now)
      append_event(KEYS[5], ARGV[14] .. '"' .. id .. '"' .. ARGV[15], tonumber(ARGV[16]))
      evicted[#evicted + 1] = id
    end
  end
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  if own_token then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl) end
  redis.call('HSET', KEYS[2], 'session', ARGV[3], 'token', ARGV[2], 'user', ARGV[7],
    'exp', ARGV[5], 'start', ARGV[8], 'ver', ARGV[9])
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1])
end
refresh_ttl(KEYS[3], KEYS[4], now)
return evicted
"#
    ))
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

/// `list_by_user`: one page of the listing index, newest first, after the cursor.
///
/// `ZRANGE … BYSCORE REV LIMIT` starts at the cursor's millisecond and returns members of equal
/// score in reverse byte order, which is the listing's session id order; those at the cursor's
/// millisecond that are not below the cursor's id are skipped. Ids whose record is gone or
/// expired are skipped too, and the reads go on until `count` sessions are found or the index
/// ends: the cost follows the page, not the user's session count. Expired ids are purged first
/// (each once), and a listing index out of step with the expiry index is rebuilt.
///
/// KEYS: expiry index, listing index. ARGV: now ms, session key prefix, how many sessions
/// (the page length plus one), the cursor's `started_at` ms and session id (both empty for the
/// first page). Returns `[1, session JSON, score, …]`, `[0]` when a record's start cannot be
/// read to rebuild the listing index, or `[2]` when a listed record has no expiry.
pub(super) static LIST_BY_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{INDEX_LUA}{}",
        r#"
local now = tonumber(ARGV[1])
purge(KEYS[1], KEYS[2], now)
if not sync_started(KEYS[1], KEYS[2], ARGV[2]) then return {0} end
local count = tonumber(ARGV[3])
local top, cursor_ms, cursor_id = '+inf', nil, nil
if ARGV[4] ~= '' then
  top, cursor_ms, cursor_id = ARGV[4], tonumber(ARGV[4]), ARGV[5]
end
local out = {1}
local found, offset = 0, 0
while found < count do
  local batch = redis.call('ZRANGE', KEYS[2], top, '-inf', 'BYSCORE', 'REV',
    'LIMIT', offset, count - found, 'WITHSCORES')
  if #batch == 0 then break end
  offset = offset + #batch / 2
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    if not cursor_ms or tonumber(score) < cursor_ms or id_less(id, cursor_id) then
      local rec = redis.call('HMGET', ARGV[2] .. id, 'session', 'exp')
      local exp = tonumber(rec[2])
      if rec[1] and not exp then return {2} end
      if rec[1] and exp > now then
        out[#out + 1] = rec[1]
        out[#out + 1] = score
        found = found + 1
      end
    end
  end
end
return out
"#
    ))
});

/// `update`: compare-and-swap on the version. Replaces a live session's JSON, expiry and
/// version when the stored version (`ver`, absent meaning 0) is the one the update follows;
/// re-sets the TTLs of its session and token keys and its expiry score; with a new token hash,
/// moves the token key (the old one is deleted); with an event, appends it to the feed. Does
/// nothing when the session is gone or expired, or the version does not match.
///
/// KEYS: session key, expiry index, listing index, feed stream, and the new token key when the
/// token changes. ARGV: session id, session JSON, TTL ms, `expires_at` ms, now ms, token key
/// prefix, user key, `started_at` ms, the stored version expected, the new version, the new
/// token hash (empty to keep it), the event JSON (empty for none), retention ms.
///
/// Returns 1 (updated), 0 (no live session), 2 (stale version), -1 (other user or start), -2
/// (damaged record), -3 (the new token is taken).
///
/// With an empty token key prefix the token index lives in another slot and is the caller's to
/// write (see [`CREATE`]): no token key is declared or touched, the record's `token` field
/// still changes, and an update returns `[1, the token hash it replaced or kept]` instead of 1,
/// so the caller can refresh or delete that token key.
pub(super) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FEED_LUA}{INDEX_LUA}{}",
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local rec = redis.call('HMGET', KEYS[1], 'token', 'user', 'exp', 'ver', 'start', 'session')
local exp = tonumber(rec[3])
local now = tonumber(ARGV[5])
if not rec[1] or not exp then return -2 end
if exp <= now then return 0 end
if rec[2] ~= ARGV[7] then return -1 end
local start = tonumber(rec[5])
if not start and rec[6] then start = started_ms_of(rec[6]) end
if not start then return -2 end
if start ~= tonumber(ARGV[8]) then return -1 end
local ver = rec[4] or '0'
if not string.match(ver, '^%d+$') then return -2 end
if ver ~= ARGV[9] then return 2 end
local own_token = ARGV[6] ~= ''
local tok = ARGV[6] .. rec[1]
local token, rotated = rec[1], ARGV[11] ~= ''
if rotated then
  if own_token then
    if redis.call('EXISTS', KEYS[5]) == 1 then return -3 end
    redis.call('DEL', tok)
    tok = KEYS[5]
  end
  token = ARGV[11]
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  if own_token and rotated then
    redis.call('SET', tok, ARGV[1], 'PX', ttl)
  elseif own_token then
    redis.call('PEXPIRE', tok, ttl)
  end
  redis.call('HSET', KEYS[1], 'session', ARGV[2], 'exp', ARGV[4], 'ver', ARGV[10],
    'start', ARGV[8], 'token', token)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
else
  redis.call('DEL', KEYS[1])
  if own_token then redis.call('DEL', tok) end
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
if ARGV[12] ~= '' then append_event(KEYS[4], ARGV[12], tonumber(ARGV[13])) end
purge(KEYS[2], KEYS[3], now)
refresh_ttl(KEYS[2], KEYS[3], now)
if own_token then return 1 end
return {1, rec[1]}
"#
    ))
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
  -- The entries to trim (below min_id-0) sit at the head: read them forward from there, a page
  -- at a time (O(log N) each). A reverse range ending at min_id costs O(N) on Redis 7.0 and
  -- capped a revocation storm at about a thousand appends a second.
  local bound = '(' .. min_id .. '-0'
  local page = redis.call('XRANGE', stream, '-', bound, 'COUNT', 128)
  if #page == 0 then return end
  local newest_old = page[#page][1]
  while #page == 128 do
    page = redis.call('XRANGE', stream, '(' .. newest_old, bound, 'COUNT', 128)
    if #page > 0 then newest_old = page[#page][1] end
  end
  redis.call('XTRIM', stream, 'MINID', min_id)
  local deleted = stream_info(stream, 'max-deleted-entry-id')
  if not deleted or id_less(deleted, newest_old) then
    redis.call('XSETID', stream, id, 'MAXDELETEDID', newest_old)
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

/// `revoke`: deletes a session's keys and index entries and, if it was live, appends the
/// revocation event to the feed.
///
/// KEYS: session key, feed stream. ARGV: session id, now ms, event JSON, token key prefix
/// (empty when the token index lives in another slot: see [`CREATE`]), expiry index prefix,
/// retention ms, listing index prefix. Returns the session JSON if a live
/// session was revoked (an empty string if its record was damaged; the event is published all
/// the same), else nil.
pub(super) static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FEED_LUA}{}",
        r#"
local rec = redis.call('HMGET', KEYS[1], 'session', 'token', 'user', 'exp')
if redis.call('DEL', KEYS[1]) == 0 then return false end
if rec[2] and ARGV[4] ~= '' then redis.call('DEL', ARGV[4] .. rec[2]) end
if rec[3] then
  redis.call('ZREM', ARGV[5] .. rec[3], ARGV[1])
  redis.call('ZREM', ARGV[7] .. rec[3], ARGV[1])
end
local exp = tonumber(rec[4])
if exp and exp <= tonumber(ARGV[2]) then return false end
-- Live, or a damaged record that might be: publish, and let the caller see the damage.
append_event(KEYS[2], ARGV[3], tonumber(ARGV[6]))
return rec[1] or ''
"#
    ))
});

/// `revoke_all`: deletes every session in a user's indexes, or every one but the kept id, and
/// appends a session revocation per live session deleted (exact whatever clock set each
/// `started_at`: a session created on an instance whose clock runs ahead starts after the user
/// event's cut-off). Without a kept id it also deletes both indexes and appends the user's
/// revocation event (always, so a session being created concurrently elsewhere is cut off too;
/// with a kept id a user event would cut off the kept session).
///
/// KEYS: expiry index, listing index, feed stream. ARGV: now ms, the user event JSON (empty
/// with a kept id), session key prefix, token key prefix (empty when the token index lives in
/// another slot: see [`CREATE`]), retention ms, the kept id (empty for
/// none), a session revocation event's JSON before and after its session id. Returns the ids of
/// the live sessions deleted.
pub(super) static REVOKE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FEED_LUA}{INDEX_LUA}{}",
        r#"
local now = tonumber(ARGV[1])
local keep = ARGV[6]
local seen, ids = {}, {}
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  for _, id in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
    end
  end
end
local out = {}
for _, id in ipairs(ids) do
  if id ~= keep then
    if delete_session(ARGV[3], ARGV[4], KEYS[1], KEYS[2], id, now) then
      out[#out + 1] = id
      append_event(KEYS[3], ARGV[7] .. '"' .. id .. '"' .. ARGV[8], tonumber(ARGV[5]))
    end
  end
end
if keep == '' then
  redis.call('DEL', KEYS[1], KEYS[2])
  append_event(KEYS[3], ARGV[2], tonumber(ARGV[5]))
else
  refresh_ttl(KEYS[1], KEYS[2], now)
end
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

/// An index key of the Cluster store (a token key or a session id key, kept in a partition of
/// its own; see `cluster/mod.rs`): makes it hold `value` for at least `ttl` ms. A missing key is
/// set; an existing key with the same value only ever has its expiry pushed later (`GT`), so
/// that an update that later fails cannot cut short the index of a live session.
///
/// KEYS: the index key. ARGV: value, TTL ms. Returns 1, or 0 (and changes nothing) when the key
/// holds another value: it belongs to another session.
#[cfg(feature = "redis-cluster")]
pub(super) static KEEP_INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
if current then
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'GT')
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"#,
    )
});
