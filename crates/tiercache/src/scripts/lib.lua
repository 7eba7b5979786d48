-- Helpers prepended to every script. Bookkeeping that cannot be read (a key of another type, bytes
-- that are not a nonce tiercache writes) is treated as changed, rewritten, and reported: each helper
-- that repairs something appends a letter to `repaired` (e epoch, g generation, t tag version,
-- l lease, s stream, d entry, f a lock's fencing counter), which the script returns so the node can
-- count and log it.
local repaired = ''

-- Whether v is a nonce as tiercache writes them: 1 to 19 decimal digits, no leading zero.
local function is_nonce(v)
  return type(v) == 'string' and #v <= 19 and string.match(v, '^[1-9]%d*$') ~= nil
end

-- The string at key, or false when it is missing. A key of another type is deleted, reported as
-- `kind` and reads as missing.
local function get_string(key, kind)
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then
    redis.call('DEL', key)
    repaired = repaired .. kind
    return false
  end
  return v
end

-- The nonce at key (an epoch or a tag version), and whether this call wrote it. Missing: `fresh` is
-- written. Not a nonce: replaced by `fresh` and reported; "written" tells the caller that whoever
-- trusted the old bytes must learn that it changed.
local function get_nonce(key, kind, fresh)
  local v = get_string(key, kind)
  if is_nonce(v) then return v, false end
  if v then repaired = repaired .. kind end
  redis.call('SET', key, fresh)
  return fresh, true
end

-- Makes the key at `key` live at least `ms` more milliseconds: a key without an expiry gets one (so
-- bookkeeping never lives forever), a shorter expiry is lengthened, a missing key stays missing.
local function expire_at_least(key, ms)
  local left = redis.call('PTTL', key)
  if left == -1 or (left >= 0 and left < tonumber(ms)) then
    redis.call('PEXPIRE', key, ms)
  end
end

-- Takes the lease at key for `token` for `ms` milliseconds; whether it did. A key that cannot be a
-- lease (another type, a value that is not a token, or no expiry, so it would never run out) is
-- repaired by taking it over.
local function take_lease(key, token, ms)
  if redis.call('SET', key, token, 'NX', 'PX', ms) then return true end
  local holder = get_string(key, 'l')
  if holder and is_nonce(holder) and redis.call('PTTL', key) > 0 then return false end
  if holder then repaired = repaired .. 'l' end
  redis.call('SET', key, token, 'PX', ms)
  return true
end

-- Deletes the lease at key if `token` still holds it; whether it did.
local function release_lease(key, token)
  if redis.pcall('GET', key) == token then
    redis.call('DEL', key)
    return true
  end
  return false
end

-- Whether an entry key is of layout 2 (one string, tag versions inside) rather than layout 1 (a
-- hash: field d the value, field t the tag versions). The key's last letter says which.
local function is_string_entry(key)
  return string.sub(key, -1) == 'v'
end

-- The entry at key: its value and, for layout 1, its t field (layout 2 returns false: its tags are
-- inside the value). false, false when missing; a key of the wrong type is deleted and reported 'd'.
local function read_entry(key)
  if is_string_entry(key) then
    local v = redis.pcall('GET', key)
    if type(v) == 'table' then
      redis.call('DEL', key)
      repaired = repaired .. 'd'
      return false, false
    end
    return v, false
  end
  local entry = redis.pcall('HMGET', key, 'd', 't')
  if entry.err then
    redis.call('DEL', key)
    repaired = repaired .. 'd'
    return false, false
  end
  if entry[1] then return entry[1], entry[2] or '' end
  return false, false
end

-- Writes the entry at key for `ms` milliseconds: the value, and for layout 1 the t field beside it.
local function write_entry(key, value, t, ms)
  if is_string_entry(key) then
    redis.call('SET', key, value, 'PX', ms)
    return
  end
  redis.call('DEL', key)
  redis.call('HSET', key, 'd', value, 't', t)
  redis.call('PEXPIRE', key, ms)
end

-- Redis's clock, µs.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Whether a write with `deadline` (ms on Redis's clock, '0' for none) arrives after its caller
-- stopped waiting for it (see l2/clock.rs): it must not be written then.
local function too_late(deadline)
  local d = tonumber(deadline) or 0
  return d > 0 and now_us() > d * 1000
end
