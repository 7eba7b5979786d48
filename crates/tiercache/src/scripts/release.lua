-- Releases a lease only if the caller still holds it (compare-and-delete).
--
-- KEYS[1]  the lease key
-- ARGV[1]  the holder's token
--
-- Returns 1 when released, 0 when the lease had expired or belongs to someone else (a key of another
-- type is not the caller's lease either).
if release_lease(KEYS[1], ARGV[1]) then return 1 end
return 0
