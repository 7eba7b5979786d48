-- Takes a lease: SET NX PX with a random token. A lease key that cannot be a lease (another type, a
-- value that is not a token, or no expiry, so it would never run out) is repaired by taking it over.
--
-- KEYS[1]  the lease key
-- ARGV[1]  the caller's token (a nonce)
-- ARGV[2]  the lease, ms
--
-- Returns { acquired (1 or 0), repaired } (see lib.lua for repaired).
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return { 1, '' } end
local holder = get_string(KEYS[1], 'l')
if holder and is_nonce(holder) and redis.call('PTTL', KEYS[1]) > 0 then return { 0, '' } end
if holder then repaired = repaired .. 'l' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return { 1, repaired }
