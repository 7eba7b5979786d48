-- Lengthens the lives of tag versions an entry just stored on a cluster records, so they outlive it
-- (on one server scripts/store.lua does it itself). A version that expired first would only make the
-- entry read as invalidated early: a miss, never a stale read.
--
-- KEYS[1..]  version keys of the entry's tags (in the namespace's slot)
-- ARGV[1]    the entry's lifetime in Redis, ms
--
-- Returns the number of keys looked at.
for i = 1, #KEYS do expire_at_least(KEYS[i], ARGV[1]) end
return #KEYS
