-- Applies a batch of invalidations to L2, appends it to the replay stream and publishes it, atomically.
--
-- KEYS[1]                  the namespace's replay stream
-- KEYS[2 .. 1+2n]          for each of n keys: its entry hash, then its generation
-- KEYS[2+2n ..]            version keys of the invalidated tags
-- ARGV[1]                  the namespace's pub/sub channel ('' to skip publishing: fault injection)
-- ARGV[2]                  n, the number of keys
-- ARGV[3]                  the generations' lifetime, ms
-- ARGV[4]                  the stream's approximate cap (XADD MAXLEN ~)
-- ARGV[5]                  the bus message (opaque bytes)
-- ARGV[6 .. 5+n]           the new generation of each key
-- ARGV[6+n ..]             the new version of each tag
--
-- Publishes "<stream id> <message>" so receivers learn the position they have applied up to.
-- Returns { stream id, repaired }: a key of another type where the stream belongs is deleted first
-- (nodes positioned in it then find it gone and drop their L1), reported as 's' (see lib.lua).
local n = tonumber(ARGV[2])
for i = 1, n do
  redis.call('DEL', KEYS[2 * i])
  redis.call('SET', KEYS[2 * i + 1], ARGV[5 + i], 'PX', ARGV[3])
end
for j = 2 + 2 * n, #KEYS do
  redis.call('SET', KEYS[j], ARGV[6 + n + (j - 2 - 2 * n)])
end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'stream' and kind ~= 'none' then
  redis.call('DEL', KEYS[1])
  repaired = repaired .. 's'
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'm', ARGV[5])
if ARGV[1] ~= '' then
  redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[5])
end
return { id, repaired }
