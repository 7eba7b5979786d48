-- Where this namespace stands: its epoch (created when missing, rewritten when unreadable), whether
-- the namespace's replay stream exists (a key of another type in its place is deleted), and whether
-- Redis went back in time behind the caller's position.
--
-- KEYS[1]  the namespace's epoch (in the stream's slot)
-- KEYS[2]  the namespace's replay stream
-- ARGV[1]  an epoch nonce, set when no readable epoch exists
-- ARGV[2]  the stream position the caller has applied ('' when it has none)
--
-- Returns { epoch, stream exists (1 or 0), repaired, Redis's clock in µs, behind (1 or 0) } (see
-- lib.lua for repaired; the clock is what the node's write deadlines are set on, l2/clock.rs).
-- behind is 1 when the entry at the caller's position is gone although trimming cannot have taken
-- it (the stream is gone, holds an older entry, or is empty and never reached that far): Redis was
-- restored from an older snapshot, lost its last writes (AOF everysec) or a replica that had not
-- received them was promoted. The epoch cannot tell: it is in the snapshot too.
local epoch = get_nonce(KEYS[1], 'e', ARGV[1])
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'stream' and kind ~= 'none' then
  redis.call('DEL', KEYS[2])
  repaired = repaired .. 's'
  kind = 'none'
end

-- A stream id's two numbers, or nil when it is not one.
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if not ms then return nil end
  return tonumber(ms), tonumber(seq)
end

local behind = 0
local known = ARGV[2] or ''
local known_ms, known_seq = id_parts(known)
if known_ms then
  if kind == 'none' then
    behind = 1
  elseif #redis.call('XRANGE', KEYS[2], known, known) == 0 then
    -- Trimming removes the oldest entries first: if an older one is still there, ours was not trimmed.
    -- If the stream is empty (trimmed to nothing), the newest id it ever gave tells instead.
    local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    local older
    if #first == 0 then
      local info = redis.call('XINFO', 'STREAM', KEYS[2])
      for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then older = info[i + 1] end
      end
    else
      older = first[1][1]
    end
    local ms, seq = id_parts(older or '')
    if ms and (ms < known_ms or (ms == known_ms and seq < known_seq)) then behind = 1 end
  end
end
return { epoch, kind == 'stream' and 1 or 0, repaired, now_us(), behind }
