-- Writes a value unconditionally (Cache::set on a cluster; on one server the write travels in the
-- bus's batch, scripts/invalidate.lua) and fences out every load of the key still running.
-- Every key is in the entry's slot; the tag versions the entry records were read (and created where
-- missing) by scripts/versions.lua just before.
--
-- KEYS[1]  the entry (either layout, see write_entry in lib.lua)
-- KEYS[2]  the key's generation
-- KEYS[3]  the key's entry in the other layout, deleted: nodes of that layout must not read the old
--          value from it
-- ARGV[1]  the key's new generation
-- ARGV[2]  the generation's lifetime, ms
-- ARGV[3]  the envelope
-- ARGV[4]  the t field (tag keys and versions, length-prefixed; layout 1 only)
-- ARGV[5]  the entry's lifetime in Redis, ms
-- ARGV[6]  the write's deadline, ms on Redis's clock ('0' for none): past it the caller has given up
--          (and queued the key's invalidation), so the key is only invalidated
--
-- Returns 1 when written, 0 when too late.
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[3])
if too_late(ARGV[6]) then
  redis.call('DEL', KEYS[1])
  return 0
end
write_entry(KEYS[1], ARGV[3], ARGV[4], ARGV[5])
return 1
