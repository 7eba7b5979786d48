-- Takes a lease: SET NX PX with a random token (see take_lease in lib.lua).
--
-- KEYS[1]  the lease key
-- ARGV[1]  the caller's token (a nonce)
-- ARGV[2]  the lease, ms
--
-- Returns { acquired (1 or 0), repaired } (see lib.lua for repaired).
if take_lease(KEYS[1], ARGV[1], ARGV[2]) then return { 1, repaired } end
return { 0, repaired }
