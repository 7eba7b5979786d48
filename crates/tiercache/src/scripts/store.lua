-- Stores a loaded value only if nothing invalidated it while it was loading (fencing), then lets go
-- of the load's lease and, on a single server, announces the fill: one round trip ends a load.
--
-- KEYS[1]   the entry (either layout, see write_entry in lib.lua)
-- KEYS[2]   the key's generation
-- KEYS[3]   the key's lease
-- KEYS[4..] version keys of the entry's tags, when they are on the entry's server; on a cluster they
--           live in the namespace's slot and the caller checks them just before
-- ARGV[1]   the generation read before the load
-- ARGV[2]   the envelope
-- ARGV[3]   the t field (tag keys and versions, length-prefixed; layout 1 only)
-- ARGV[4]   the entry's lifetime in Redis, ms (logical TTL plus fail-safe grace)
-- ARGV[5]   the lease token the load held ('' when it held none)
-- ARGV[6]   the channel to announce the fill on ('' on a cluster, where the channel lives in another
--           slot and the caller publishes)
-- ARGV[7]   the announcement
-- ARGV[8..] the version of each tag read before the load, in KEYS[4..] order
--
-- Returns 1 when stored, 0 when an invalidation, a restart or a flush happened since the load began
-- (the generation changed or is gone). A key of the wrong type reads as changed (fail closed); the
-- next read repairs it. The lease is released either way.
if ARGV[5] ~= '' then release_lease(KEYS[3], ARGV[5]) end
if (redis.pcall('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
for i = 4, #KEYS do
  if redis.pcall('GET', KEYS[i]) ~= ARGV[i + 4] then return 0 end
end
write_entry(KEYS[1], ARGV[2], ARGV[3], ARGV[4])
-- The versions the entry records must outlive it; otherwise it would read as invalidated early.
for i = 4, #KEYS do expire_at_least(KEYS[i], ARGV[4]) end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[7]) end
return 1
