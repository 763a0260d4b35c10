//! The Lua scripts that make multi-step updates atomic.
//!
//! Each script touches only keys of one user (one hash tag), so it runs on
//! one slot in Redis Cluster; the many-key ones (`ROUTES`, `PUSH_RECENT`)
//! get keys their caller grouped by slot there. `redis::Script` sends them
//! by SHA (`EVALSHA`) and loads them again after a server restart or
//! failover (`NOSCRIPT`).
//!
//! Versions and sessions are compared as 20-digit strings (see
//! `codec::digits`): Lua numbers are doubles and would round a `u64`.

use std::sync::LazyLock;

use redis::Script;

/// Appends to recent windows, each exactly as `MemoryCache::push_recent`
/// does (in a cluster they must share a slot).
///
/// `KEYS` the windows; `ARGV` cap (>= 1), TTL (ms), then for each window in
/// turn its prev version (20 digits) and the element (version digits +
/// entry). A window's list holds the floor first (every version above it
/// is held), then entries oldest first. Windows are written in order, so
/// two entries of one owner go in the order given. Returns the number of
/// windows written.
pub(crate) static PUSH_RECENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local function push(key, prev, element, cap, ttl)
  local len = redis.call('LLEN', key)
  local newest = nil
  if len >= 2 then
    newest = string.sub(redis.call('LINDEX', key, -1), 1, 20)
  end
  if newest == prev then
    len = redis.call('RPUSH', key, element)
  else
    -- First push, or out of order: restart so the window never hides a gap.
    redis.call('DEL', key)
    len = redis.call('RPUSH', key, prev, element)
  end
  local drop = len - 1 - cap
  if drop > 0 then
    -- Entries sit at 1..len-1. The last one evicted (at `drop`) becomes the
    -- floor, and everything before it goes.
    local floor = string.sub(redis.call('LINDEX', key, drop), 1, 20)
    redis.call('LSET', key, drop, floor)
    redis.call('LTRIM', key, drop, -1)
  end
  redis.call('PEXPIRE', key, ttl)
end
local cap, ttl = tonumber(ARGV[1]), ARGV[2]
for i, key in ipairs(KEYS) do
  push(key, ARGV[1 + 2 * i], ARGV[2 + 2 * i], cap, ttl)
end
return #KEYS
"#,
    )
});

/// Reads a recent window: exactly `MemoryCache::recent`.
///
/// `KEYS[1]` the window; `ARGV` after version (20 digits), limit. Returns
/// nil when the window cannot answer (missing, or `after` below its floor),
/// else up to `limit + 1` elements after `after` (one more than asked, so
/// the caller sees whether more follow).
pub(crate) static RECENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local key, after = KEYS[1], ARGV[1]
local limit = tonumber(ARGV[2])
local len = redis.call('LLEN', key)
if len < 2 then return false end
if after < redis.call('LINDEX', key, 0) then return false end
-- Binary search for the first entry above `after` among 1..len-1.
local lo, hi = 1, len
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if string.sub(redis.call('LINDEX', key, mid), 1, 20) > after then
    hi = mid
  else
    lo = mid + 1
  end
end
if lo >= len then return {} end
return redis.call('LRANGE', key, lo, lo + limit)
"#,
    )
});

/// Adds or refreshes one device's route.
///
/// `KEYS[1]` the route, `KEYS[2]` the user's devices set; `ARGV` the device
/// as a set member, the route bytes, TTL (ms). The route key expires by
/// itself; the set lives as long as its longest route and forgets devices
/// whose route ran out on every heartbeat, so it stays small.
pub(crate) static REGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
-- Route keys sit beside the set (same hash tag, same slot).
local base = string.sub(KEYS[2], 1, -8) .. 'route:'
for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', base .. member) == 0 then
    redis.call('SREM', KEYS[2], member)
  end
end
return 1
"#,
    )
});

/// Removes a device's route if it still belongs to the session.
///
/// `KEYS[1]` the route, `KEYS[2]` the devices set; `ARGV` the device as a
/// set member, the session (20 digits). Returns 1 when it removed it.
pub(crate) static UNREGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local route = redis.call('GET', KEYS[1])
if route and string.sub(route, 1, 20) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[1])
  return 1
end
return 0
"#,
    )
});

/// Live routes of many users (read only).
///
/// `KEYS` the users' devices sets (all on one slot in cluster mode).
/// Returns one array per key, in order, of the route values still alive.
pub(crate) static ROUTES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for i, set in ipairs(KEYS) do
  local routes = {}
  local members = redis.call('SMEMBERS', set)
  if #members > 0 then
    local base = string.sub(set, 1, -8) .. 'route:'
    local keys = {}
    for j, member in ipairs(members) do
      keys[j] = base .. member
    end
    for _, value in ipairs(redis.call('MGET', unpack(keys))) do
      if value then
        routes[#routes + 1] = value
      end
    end
  end
  out[i] = routes
end
return out
"#,
    )
});
