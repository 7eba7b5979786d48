-- Applies a batch of invalidations to L2, appends it to the replay stream and publishes it, atomically.
--
-- KEYS[1]                  the namespace's replay stream
-- KEYS[2 .. 1+3n]          for each of n keys: its entry in both layouts, then its generation (on a
--                          cluster n is 0:
--                          keys live in other slots and scripts/invalidate_keys.lua ran there first)
-- KEYS[2+3n ..]            version keys of the invalidated tags (in the stream's slot)
-- ARGV[1]                  the namespace's channel ('' to skip publishing: fault injection)
-- ARGV[2]                  the publishing command: PUBLISH, or SPUBLISH on a cluster
-- ARGV[3]                  n, the number of keys
-- ARGV[4]                  the generations' lifetime, ms
-- ARGV[5]                  the stream's approximate cap (XADD MAXLEN ~)
-- ARGV[6]                  the bus message (opaque bytes)
-- ARGV[7 .. 6+n]           the new generation of each key
-- ARGV[7+n .. 6+n+m]       the new version of each of the m tags
-- ARGV[7+n+m]              w, the number of entries to write after their key's invalidation (a
--                          `set`); then for each, four arguments: the key's index (1..n), the value,
--                          the t field (layout 1) and the entry's lifetime in Redis, ms
-- ARGV[8+n+m+4w]           the writes' deadline, ms on Redis's clock ('0' for none): past it their
--                          callers have given up (and queued the keys' invalidations), so the keys
--                          are only invalidated
--
-- Publishes "<stream id> <message>" so receivers learn the position they have applied up to.
-- Returns { stream id, repaired, refused }: a key of another type where the stream belongs is deleted
-- first (nodes positioned in it then find it gone and drop their L1), reported as 's' (see lib.lua);
-- refused is 1 when the writes came too late and were not made.
local n = tonumber(ARGV[3])
local writes_at = 7 + n + (#KEYS - 1 - 3 * n)
local write_count = tonumber(ARGV[writes_at] or '0')
local refused = 0
if write_count > 0 and too_late(ARGV[writes_at + 4 * write_count + 1]) then
  write_count = 0
  refused = 1
end
local write_of = {}
for w = 1, write_count do
  local at = writes_at + 4 * (w - 1)
  write_of[tonumber(ARGV[at + 1])] = at
end
-- In the batch's order, each key's write right after its own invalidation: a key invalidated after
-- it was set in the same batch ends without a value, one set after it was invalidated ends with it.
for i = 1, n do
  redis.call('DEL', KEYS[3 * i - 1], KEYS[3 * i])
  redis.call('SET', KEYS[3 * i + 1], ARGV[6 + i], 'PX', ARGV[4])
  local at = write_of[i]
  if at then write_entry(KEYS[3 * i - 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]) end
end
-- A new tag version keeps the lifetime of the one it replaces (entries recording that one may
-- still be read and must find it changed) and lives at least as long as a generation.
for j = 2 + 3 * n, #KEYS do
  local left = redis.call('PTTL', KEYS[j])
  redis.call('SET', KEYS[j], ARGV[7 + n + (j - 2 - 3 * n)], 'PX', math.max(left, tonumber(ARGV[4])))
end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'stream' and kind ~= 'none' then
  redis.call('DEL', KEYS[1])
  repaired = repaired .. 's'
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'm', ARGV[6])
if ARGV[1] ~= '' then
  redis.call(ARGV[2], ARGV[1], id .. ' ' .. ARGV[6])
end
return { id, repaired, refused }
