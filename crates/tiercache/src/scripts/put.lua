-- Writes a value unconditionally (Cache::set) and fences out every load of the key still running.
-- Every key is in the entry's slot; the tag versions the entry records were read (and created where
-- missing) by scripts/versions.lua just before.
--
-- KEYS[1]  the entry hash
-- KEYS[2]  the key's generation
-- ARGV[1]  the key's new generation
-- ARGV[2]  the generation's lifetime, ms
-- ARGV[3]  the envelope
-- ARGV[4]  the t field (tag keys and versions, length-prefixed)
-- ARGV[5]  the entry's lifetime in Redis, ms
--
-- Returns 1.
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[3], 't', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
