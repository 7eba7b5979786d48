-- Reads one entry and its generation, rewriting what cannot be read; when asked, and only when
-- there is no entry, also takes the key's lease, so that a cold read's fence and lease cost one round
-- trip. Every key is in the entry's slot; the tag versions the entry recorded are checked by the
-- caller (scripts/versions.lua, or an MGET pipelined behind this script), in the namespace's slot.
--
-- KEYS[1]  the entry (see read_entry in lib.lua for its two layouts)
-- KEYS[2]  the key's generation
-- KEYS[3]  (optional) the key's lease
-- ARGV[1]  a generation nonce, set when the key has no readable generation
-- ARGV[2]  the generation's lifetime, ms
-- ARGV[3]  (with KEYS[3]) the caller's lease token
-- ARGV[4]  (with KEYS[3]) the lease, ms
--
-- Returns { envelope, t, generation, repaired, leased }: envelope and t are nil when there is no
-- entry, and t is nil in layout 2, whose envelope carries the tags; leased is 1 when this call took the lease, 0 when another holds it, -1 when not asked or
-- an entry exists (the caller decides whether it needs loading).
-- A missing generation is created: a load is fenced by it, so if Redis loses it (a restart, a
-- flush, a failover) before the load is stored, the store finds it changed and refuses.
local envelope, recorded = read_entry(KEYS[1])
local generation = get_string(KEYS[2], 'g')
if not is_nonce(generation) then
  if generation then repaired = repaired .. 'g' end
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  generation = ARGV[1]
end
local leased = -1
if KEYS[3] and not envelope then
  leased = take_lease(KEYS[3], ARGV[3], ARGV[4]) and 1 or 0
end
return { envelope, recorded, generation, repaired, leased }
