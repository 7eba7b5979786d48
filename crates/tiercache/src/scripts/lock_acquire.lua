-- Takes a named lock (Cache::lock): the lease of acquire.lua, plus a fencing token larger than that
-- of every earlier acquisition of the lock. Load leases use acquire.lua and need no token: their
-- stores are fenced by generations.
--
-- KEYS[1]  the lock key
-- KEYS[2]  the lock's fencing counter, in the same slot (see keys.rs)
-- ARGV[1]  the caller's token (a nonce)
-- ARGV[2]  the lease, ms
-- ARGV[3]  how long the counter outlives this acquisition, ms
--
-- Returns { acquired (1 or 0), repaired, fencing token (0 when not acquired) }; repaired as in
-- lib.lua, with f for a counter that could not be read.
if not take_lease(KEYS[1], ARGV[1], ARGV[2]) then return { 0, repaired, 0 } end
-- The counter alone restarts at 1 once it is evicted, expired or lost in a failover; the clock alone
-- repeats within a microsecond and goes back when stepped. The larger of the two increases unless
-- both are lost together: the counter gone and the clock behind the last token.
local last = get_string(KEYS[2], 'f')
local next_count = 0
-- 2^53: where Lua's doubles stop counting by one.
if is_nonce(last) and tonumber(last) < 9007199254740992 then
  next_count = tonumber(last) + 1
elseif last then
  repaired = repaired .. 'f'
end
local token = math.max(next_count, now_us())
redis.call('SET', KEYS[2], string.format('%.0f', token), 'PX', ARGV[3])
return { 1, repaired, token }
