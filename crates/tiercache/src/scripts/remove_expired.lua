-- Removes an entry an operator found past its logical expiry, only if it is still that entry: a node
-- that stored a fresh value since must keep it.
--
-- KEYS[1]  the entry (either layout)
-- ARGV[1]  the first bytes of the value found (its header: timestamps and lengths)
--
-- Returns 1 when removed, 0 when the entry is gone or was replaced.
local value
if is_string_entry(KEYS[1]) then
  value = redis.pcall('GET', KEYS[1])
else
  if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
  value = redis.call('HGET', KEYS[1], 'd')
end
if type(value) == 'string' and string.sub(value, 1, #ARGV[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
