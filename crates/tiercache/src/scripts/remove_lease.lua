-- Removes a lease or named lock an operator found abandoned, only if it is still the one found
-- (compare-and-delete), or if it cannot be anyone's lease (a key of another type).
--
-- KEYS[1]  the lease or lock key
-- ARGV[1]  the token found in it
--
-- Returns 1 when removed, 0 when it is gone or now holds another token (someone took it since).
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' then
  return redis.call('DEL', KEYS[1])
end
if v == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
