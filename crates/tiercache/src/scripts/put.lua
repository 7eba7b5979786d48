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
-- ARGV[5]   an epoch nonce, set only when no epoch exists yet
-- ARGV[6..] one version nonce per tag, set only when that tag has no version yet
--
-- Returns { created, version of KEYS[4], ... }: the versions the entry was stored under, and one '1' or '0'
-- per tag telling whether this call created that version (the caller announces created versions).
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[5], 'NX')
local recorded, created, reply = {}, {}, { '' }
for i = 4, #KEYS do
  created[#created + 1] = redis.call('SET', KEYS[i], ARGV[i + 2], 'NX') and '1' or '0'
  local version = redis.call('GET', KEYS[i])
  reply[#reply + 1] = version
  recorded[#recorded + 1] = #KEYS[i] .. '.' .. KEYS[i] .. #version .. '.' .. version
end
reply[1] = table.concat(created)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[3], 't', table.concat(recorded))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return reply
