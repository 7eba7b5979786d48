-- The versions of a namespace's tags. Every key is in the namespace's slot.
--
-- KEYS[1..n]    version keys of the tags a caller will attach: created when missing or unreadable
-- KEYS[n+1..]   version keys an entry recorded: read as they are
-- ARGV[1]       n
-- ARGV[2]       how long, ms, the versions of KEYS[1..n] must live at least from now: the longest an
--               entry recording them can live (a version that expires reads as changed, so what
--               recorded it is refused, never served)
-- ARGV[3..n+2]  one version nonce per KEYS[1..n]
--
-- Returns { created, repaired, version of KEYS[1], ..., version of KEYS[#KEYS] }. created has one '1'
-- or '0' per KEYS[1..n]: '1' when this call wrote that version (first use, the old one was evicted,
-- or it was unreadable), which the caller must announce. A recorded key that is missing or
-- unreadable reads as '', which matches no recorded version.
local n = tonumber(ARGV[1])
local reply, created = { '', '' }, {}
for i = 1, n do
  local version, wrote = get_nonce(KEYS[i], 't', ARGV[i + 2])
  expire_at_least(KEYS[i], ARGV[2])
  created[i] = wrote and '1' or '0'
  reply[#reply + 1] = version
end
for i = n + 1, #KEYS do
  local v = redis.pcall('GET', KEYS[i])
  reply[#reply + 1] = type(v) == 'string' and v or ''
end
reply[1] = table.concat(created)
reply[2] = repaired
return reply
