-- Where this namespace stands: its epoch (created when missing, rewritten when unreadable) and whether
-- the namespace's replay stream exists (a key of another type in its place is deleted).
--
-- KEYS[1]  the namespace's epoch (in the stream's slot)
-- KEYS[2]  the namespace's replay stream
-- ARGV[1]  an epoch nonce, set when no readable epoch exists
--
-- Returns { epoch, stream exists (1 or 0), repaired, Redis's clock in µs } (see lib.lua for
-- repaired; the clock is what the node's write deadlines are set on, l2/clock.rs).
local epoch = get_nonce(KEYS[1], 'e', ARGV[1])
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'stream' and kind ~= 'none' then
  redis.call('DEL', KEYS[2])
  repaired = repaired .. 's'
  kind = 'none'
end
return { epoch, kind == 'stream' and 1 or 0, repaired, now_us() }
