-- Reads everything an operator may ask about one entry, and changes nothing (Cache::inspect).
--
-- KEYS[1]  the entry hash (field d = envelope, field t = recorded tag versions)
-- KEYS[2]  the key's generation
-- KEYS[3]  the key's load lease
--
-- The t field is a run of length-prefixed strings "<len>.<bytes>", alternating tag key and version.
--
-- Returns { type of KEYS[1], envelope header (its first 36 bytes), envelope length, t, PTTL of KEYS[1],
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
if kind == 'hash' then
  local d = redis.call('HGET', KEYS[1], 'd')
  if d then header, length = string.sub(d, 1, 36), #d end
  recorded = redis.call('HGET', KEYS[1], 't')
end
local reply = {
  kind, header, length, recorded, redis.call('PTTL', KEYS[1]),
  get(KEYS[2]), redis.call('PTTL', KEYS[2]),
  get(KEYS[3]), redis.call('PTTL', KEYS[3]),
}
return reply
