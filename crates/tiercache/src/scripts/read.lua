-- Reads one entry and everything needed to trust it, in one round trip.
--
-- KEYS[1]   the entry hash (field d = envelope, field t = recorded tag versions)
-- KEYS[2]   the key's generation
-- KEYS[3]   the database epoch
-- KEYS[4..] version keys of the tags the caller will attach if it must load (may be none)
-- ARGV[1]   an epoch nonce, set only when no epoch exists yet
-- ARGV[2..] one version nonce per KEYS[4..], set only when that tag has no version yet
--
-- The t field is a run of length-prefixed strings "<len>.<bytes>", alternating tag key and version.
--
-- Returns { status, envelope, t, generation, epoch, created, version of KEYS[4], version of KEYS[5], ... }
--   created is a string with one '1' or '0' per KEYS[4..]: '1' when this call had to create that version
--   (first use, or the old one was evicted), which the caller must announce to the other nodes
--   status 1: the entry exists and every tag it recorded still has the recorded version
--   status 0: no entry
--   status 2: the entry recorded a tag whose version changed or vanished; it was deleted (fail closed)
local function split(s)
  local out, i = {}, 1
  while i <= #s do
    local dot = string.find(s, '.', i, true)
    if not dot then return nil end
    local n = tonumber(string.sub(s, i, dot - 1))
    if not n then return nil end
    out[#out + 1] = string.sub(s, dot + 1, dot + n)
    i = dot + n + 1
  end
  return out
end

local status, envelope, recorded = 0, false, false
local entry = redis.call('HMGET', KEYS[1], 'd', 't')
if entry[1] then
  status, envelope, recorded = 1, entry[1], entry[2] or ''
  local pairs_ = split(recorded)
  if not pairs_ or #pairs_ % 2 == 1 then
    status = 2
  else
    for i = 1, #pairs_, 2 do
      if redis.call('GET', pairs_[i]) ~= pairs_[i + 1] then
        status = 2
        break
      end
    end
  end
  if status == 2 then
    redis.call('DEL', KEYS[1])
    envelope, recorded = false, false
  end
end

redis.call('SET', KEYS[3], ARGV[1], 'NX')
local reply = { status, envelope, recorded, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), '' }
local created = {}
for i = 4, #KEYS do
  created[#created + 1] = redis.call('SET', KEYS[i], ARGV[i - 2], 'NX') and '1' or '0'
  reply[#reply + 1] = redis.call('GET', KEYS[i])
end
reply[6] = table.concat(created)
return reply
