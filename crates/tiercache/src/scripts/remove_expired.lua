-- Removes an entry an operator found past its logical expiry, only if it is still that entry: a node
-- that stored a fresh value since must keep it.
--
-- KEYS[1]  the entry hash
-- ARGV[1]  the envelope header found (its first 36 bytes: timestamps, generation, length)
--
-- Returns 1 when removed, 0 when the entry is gone or was replaced.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
local d = redis.call('HGET', KEYS[1], 'd')
if d and string.sub(d, 1, 36) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
