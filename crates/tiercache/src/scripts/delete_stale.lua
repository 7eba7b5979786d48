-- Deletes an entry whose recorded tag versions were found to have moved on, only if it still records
-- them: a value stored or set since the check must stay.
--
-- KEYS[1]  the entry hash
-- ARGV[1]  the t field the check read (tag keys and versions, length-prefixed)
--
-- Returns 1 when deleted, 0 when the entry is gone or was replaced.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
if redis.call('HGET', KEYS[1], 't') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
