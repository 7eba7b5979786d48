-- Invalidates keys of one cluster slot: deletes each entry (in both layouts, for nodes of
-- either) and gives its key a new generation, so a
-- load still running cannot store. On a cluster this runs for every slot a batch touches before
-- scripts/invalidate.lua appends and publishes the batch in the namespace's slot.
--
-- KEYS[1 .. 3n]   for each of n keys: its entry in both layouts, then its generation
-- ARGV[1]         the generations' lifetime, ms
-- ARGV[2 .. 1+n]  the new generation of each key
--
-- Returns n.
local n = #KEYS / 3
for i = 1, n do
  redis.call('DEL', KEYS[3 * i - 2], KEYS[3 * i - 1])
  redis.call('SET', KEYS[3 * i], ARGV[1 + i], 'PX', ARGV[1])
end
return n
