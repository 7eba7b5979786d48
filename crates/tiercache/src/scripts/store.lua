-- Stores a loaded value only if nothing invalidated it while it was loading (fencing).
--
-- KEYS[1]   the entry hash
-- KEYS[2]   the key's generation
-- KEYS[3]   the database epoch
-- KEYS[4..] version keys of the entry's tags
-- ARGV[1]   the generation read before the load ('' when the key had none)
-- ARGV[2]   the epoch read before the load
-- ARGV[3]   the envelope
-- ARGV[4]   the t field (tag keys and versions, length-prefixed)
-- ARGV[5]   the entry's lifetime in Redis, ms (logical TTL plus fail-safe grace)
-- ARGV[6..] the version of each tag read before the load, in KEYS[4..] order
--
-- Returns 1 when stored, 0 when an invalidation, a restart or a flush happened since the load began.
-- A key of the wrong type reads as changed (fail closed); the next read repairs it.
if (redis.pcall('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
if redis.pcall('GET', KEYS[3]) ~= ARGV[2] then return 0 end
for i = 4, #KEYS do
  if redis.pcall('GET', KEYS[i]) ~= ARGV[i + 2] then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[3], 't', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
