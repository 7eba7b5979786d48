-- Reads one entry and everything needed to trust it, in one round trip.
--
-- KEYS[1]   the entry hash (field d = envelope, field t = recorded tag versions)
-- KEYS[2]   the key's generation
-- KEYS[3]   the database epoch
-- KEYS[4..] version keys of the tags the caller will attach if it must load (may be none)
-- ARGV[1]   an epoch nonce, set when no readable epoch exists
-- ARGV[2]   a generation nonce, set only when the generation holds something unreadable
-- ARGV[3]   the generation's lifetime, ms
-- ARGV[4..] one version nonce per KEYS[4..], set when that tag has no readable version
--
-- The t field is a run of length-prefixed strings "<len>.<bytes>", alternating tag key and version.
--
-- Returns { status, envelope, t, generation, epoch, created, repaired, version of KEYS[4], ... }
--   created is a string with one '1' or '0' per KEYS[4..]: '1' when this call had to write that version
--   (first use, the old one was evicted, or it was unreadable), which the caller must announce
--   repaired is the string of kinds of unreadable bookkeeping this call rewrote (see lib.lua)
--   status 1: the entry exists and every tag it recorded still has the recorded version
--   status 0: no entry
--   status 2: the entry recorded a tag whose version changed or vanished, or its t field is malformed;
--             it was deleted (fail closed)
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
local entry = redis.pcall('HMGET', KEYS[1], 'd', 't')
if entry.err then
  redis.call('DEL', KEYS[1])
  repaired = repaired .. 'd'
elseif entry[1] then
  status, envelope, recorded = 1, entry[1], entry[2] or ''
  local pairs_ = split(recorded)
  if not pairs_ or #pairs_ % 2 == 1 then
    status = 2
  else
    for i = 1, #pairs_, 2 do
      local current = redis.pcall('GET', pairs_[i])
      if type(current) ~= 'string' or current ~= pairs_[i + 1] then
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

local epoch = get_nonce(KEYS[3], 'e', ARGV[1])
-- A missing generation is ordinary (never invalidated); only unreadable bytes are replaced.
local generation = get_string(KEYS[2], 'g')
if generation and not is_nonce(generation) then
  repaired = repaired .. 'g'
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  generation = ARGV[2]
end
generation = generation or ''
local reply = { status, envelope, recorded, generation, epoch, '', '' }
local created = {}
for i = 4, #KEYS do
  local version, wrote = get_nonce(KEYS[i], 't', ARGV[i])
  created[#created + 1] = wrote and '1' or '0'
  reply[#reply + 1] = version
end
reply[6] = table.concat(created)
reply[7] = repaired
return reply
