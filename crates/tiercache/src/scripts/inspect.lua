-- Reads everything an operator may ask about one entry, and changes nothing (Cache::inspect).
--
-- KEYS[1]  the entry (layout 1: a hash, field d = envelope, field t = recorded tag versions;
--          layout 2: one string, the tag versions framed inside)
-- KEYS[2]  the key's generation
-- KEYS[3]  the key's load lease
--
-- The t field is a run of length-prefixed strings "<len>.<bytes>", alternating tag key and version.
--
-- Returns { type of KEYS[1], envelope header (its first 36 bytes, 32 in layout 2), envelope length, t,
--           PTTL of KEYS[1],
--           generation, PTTL of KEYS[2], lease token, PTTL of KEYS[3] }
-- A missing or unreadable value is nil. The recorded tags' versions live in the namespace's slot (on a
-- cluster, another node): the caller reads them.
local function get(key)
  local v = redis.pcall('GET', key)
  if type(v) ~= 'string' then return false end
  return v
end

local kind = redis.call('TYPE', KEYS[1])['ok']
local header, length, recorded = false, 0, false
if kind == 'hash' and not is_string_entry(KEYS[1]) then
  local d = redis.call('HGET', KEYS[1], 'd')
  if d then header, length = string.sub(d, 1, 36), #d end
  recorded = redis.call('HGET', KEYS[1], 't')
elseif kind == 'string' and is_string_entry(KEYS[1]) then
  -- Layout 2: the header, then the tag frame whose length it gives (format 2, see codec.rs).
  local v = redis.call('GET', KEYS[1])
  header, length = string.sub(v, 1, 32), #v
  if #v >= 32 and string.sub(v, 1, 3) == 'TC\2' then
    local tags = struct.unpack('<I4', v, 25)
    recorded = string.sub(v, 33, 32 + tags)
  end
end
local reply = {
  kind, header, length, recorded, redis.call('PTTL', KEYS[1]),
  get(KEYS[2]), redis.call('PTTL', KEYS[2]),
  get(KEYS[3]), redis.call('PTTL', KEYS[3]),
}
return reply
