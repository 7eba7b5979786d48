-- Writes a value unconditionally (Cache::set) and fences out every load of the key still running.
--
-- KEYS[1]   the entry hash
-- KEYS[2]   the key's generation
-- KEYS[3]   the database epoch
-- KEYS[4..] version keys of the entry's tags
-- ARGV[1]   the key's new generation
-- ARGV[2]   the generation's lifetime, ms
-- ARGV[3]   the envelope
-- ARGV[4]   the entry's lifetime in Redis, ms
-- ARGV[5]   an epoch nonce, set when no readable epoch exists
-- ARGV[6..] one version nonce per tag, set when that tag has no readable version
--
-- Returns { created, repaired, version of KEYS[4], ... }: the versions the entry was stored under; one
-- '1' or '0' per tag telling whether this call wrote that version (the caller announces written
-- versions); and the kinds of unreadable bookkeeping it rewrote (see lib.lua).
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
get_nonce(KEYS[3], 'e', ARGV[5])
local recorded, created, reply = {}, {}, { '', '' }
for i = 4, #KEYS do
  local version, wrote = get_nonce(KEYS[i], 't', ARGV[i + 2])
  created[#created + 1] = wrote and '1' or '0'
  reply[#reply + 1] = version
  recorded[#recorded + 1] = #KEYS[i] .. '.' .. KEYS[i] .. #version .. '.' .. version
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[3], 't', table.concat(recorded))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
reply[1] = table.concat(created)
reply[2] = repaired
return reply
