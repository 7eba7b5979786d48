-- Deletes an entry whose recorded tag versions were found to have moved on, only if it still records
-- them: a value stored or set since the check must stay.
--
-- KEYS[1]  the entry (either layout)
-- ARGV[1]  what the check read: the t field in layout 1, the whole value in layout 2 (whose tags
--          are inside it)
--
-- Returns 1 when deleted, 0 when the entry is gone or was replaced.
if is_string_entry(KEYS[1]) then
  if redis.pcall('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
  end
  return 0
end
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
if redis.call('HGET', KEYS[1], 't') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
