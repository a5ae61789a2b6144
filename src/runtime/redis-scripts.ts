/**
 * The Lua scripts of `RedisStore`: each runs atomically in Redis, so a check and the write it
 * guards (a fence, a seq, a first answer) cannot interleave with another node's.
 *
 * Keys of session S share the hash tag `{S}` (one Redis Cluster slot): `m` its meta hash
 * (principal `p`, epoch `ep`, `last` seq, `first` seq a reader gets, `head` the first seq the
 * stream holds, `bytes` held, `fence`, `owner` node, `work` from the owner's first append until
 * it lets go, `closed`, `c` created at), `e` the event stream, `z` the `count:bytes` of each of its
 * entries (to trim without reading them), `r` the open server requests (id → frame), `l` the lease
 * (`node:fence`, with a TTL), `s` the application state as last saved (`seq\njson`).
 *
 * One stream entry holds one append's events, their frames joined by newlines (JSON has none
 * raw), under the id `<seq of the first>-0`: Redis then spends per event little more than the
 * copy of its bytes, where an entry per event cost a Lua call (`XADD`) each, twice the CPU. A
 * frame is stored without the prefix and seq every event frame of the session starts with
 * (`{"jsonrpc":"2.0",…,"seq":N`), half its bytes; readers put them back.
 */

/** KEYS m l; ARGV principal epoch node leaseMs graceMs createdAt → 1, or 0 if the id is taken. */
export const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'ep', ARGV[2], 'last', 0, 'first', 1, 'head', 1, 'bytes', 0, 'fence', 1, 'owner', ARGV[3], 'work', 0, 'c', ARGV[6])
redis.call('SET', KEYS[2], ARGV[3] .. ':1', 'PX', ARGV[4])
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return 1`;

/**
 * KEYS m e l r z; ARGV principal epoch node leaseMs graceMs last → the new fence; 0 if the
 * session was closed, -1 if another node holds its lease.
 */
export const RESET = `
local meta = redis.call('HMGET', KEYS[1], 'fence', 'closed')
if meta[2] then return 0 end
local lease = redis.call('GET', KEYS[3])
if lease and string.sub(lease, 1, #ARGV[3] + 1) ~= ARGV[3] .. ':' then return -1 end
local fence = tonumber(meta[1] or '0') + 1
redis.call('DEL', KEYS[2], KEYS[4], KEYS[5])
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'ep', ARGV[2], 'last', ARGV[6], 'first', tonumber(ARGV[6]) + 1, 'head', tonumber(ARGV[6]) + 1, 'bytes', 0, 'fence', fence, 'owner', ARGV[3], 'work', 1)
redis.call('SET', KEYS[3], ARGV[3] .. ':' .. fence, 'PX', ARGV[4])
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return fence`;

/**
 * KEYS m e l z s; ARGV lease first count maxEvents maxBytes graceMs channel frames (joined by
 * newlines, each less its prefix and seq) unstored (the bytes each prefix and seq take, counted
 * against maxBytes) → the last seq stored; -1 fenced, -2 gone, -3 gap, -4 closed. Events at or below
 * the last seq are skipped (a re-sent append is a no-op); the new ones go in one entry, whole
 * entries leave the front while the rest still holds the newest `maxEvents` (or while over
 * `maxBytes`), and they are published.
 */
export const APPEND = `
local meta = redis.call('HMGET', KEYS[1], 'last', 'bytes', 'closed', 'head')
if not meta[1] then return -2 end
if meta[3] then return -4 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
local last, bytes, head = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[4])
local seq, count, frames = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[8]
if seq > last + 1 then return -3 end
if seq + count - 1 <= last then return last end
if seq <= last then
  -- Re-sent in part: skip the frames stored already (each ends at a newline).
  local at = 0
  for _ = seq, last do at = string.find(frames, '\\n', at + 1, true) end
  frames = string.sub(frames, at + 1)
  count, seq = count - (last - seq + 1), last + 1
end
redis.call('XADD', KEYS[2], seq .. '-0', 'f', frames)
local size = #frames + count * tonumber(ARGV[9])
redis.call('RPUSH', KEYS[4], count .. ':' .. size)
last, bytes = seq + count - 1, bytes + size
local maxEvents, maxBytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local trimmed = false
while true do
  local front = redis.call('LINDEX', KEYS[4], 0)
  if not front then break end
  local n, b = string.match(front, '(%d+):(%d+)')
  if last - head - tonumber(n) + 1 < maxEvents and bytes <= maxBytes then break end
  redis.call('LPOP', KEYS[4])
  head, bytes, trimmed = head + tonumber(n), bytes - tonumber(b), true
end
if trimmed then redis.call('XTRIM', KEYS[2], 'MINID', head) end
local first = math.max(head, last - maxEvents + 1)
redis.call('HSET', KEYS[1], 'last', last, 'first', first, 'head', head, 'bytes', bytes, 'work', 1)
local grace = tonumber(ARGV[6])
if grace > 0 then
  for i = 1, #KEYS do if i ~= 3 then redis.call('PEXPIRE', KEYS[i], grace) end end
end
redis.call('PUBLISH', ARGV[7], 'e' .. seq .. '\\n' .. frames)
return last`;

/**
 * KEYS m e; ARGV after count → [principal, epoch, last, first, createdAt, entry id, frames, …]
 * (up to `count` entries from the one holding the first seq wanted), or nil if there is no
 * such session. The reader drops the frames at or below `after` or below `first`.
 */
export const READ = `
local meta = redis.call('HMGET', KEYS[1], 'p', 'ep', 'last', 'first', 'closed', 'c')
if not meta[1] or meta[5] then return nil end
local out = {meta[1], meta[2], meta[3], meta[4], meta[6] or '0'}
local after, last, first = tonumber(ARGV[1]), tonumber(meta[3]), tonumber(meta[4])
if after < last then
  local from = math.max(after + 1, first)
  -- The entry holding seq \`from\` is the last one whose id (its first seq) is at most \`from\`.
  local start = redis.call('XREVRANGE', KEYS[2], from .. '-0', '-', 'COUNT', 1)[1]
  if start then
    for _, entry in ipairs(redis.call('XRANGE', KEYS[2], start[1], '+', 'COUNT', ARGV[2])) do
      out[#out + 1] = entry[1]
      out[#out + 1] = entry[2][2]
    end
  end
end
return out`;

/**
 * KEYS m l r; ARGV node leaseMs → ['owned', fence, last, epoch, lapsed, request id…],
 * ['held', pttl] or ['missing']. `lapsed` is 1 when the previous owner's lease ran out while
 * it had work (or open requests).
 */
export const ACQUIRE = `
local meta = redis.call('HMGET', KEYS[1], 'fence', 'work', 'last', 'ep', 'closed')
if not meta[1] or meta[5] then return {'missing'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'held', tostring(redis.call('PTTL', KEYS[2]))} end
local fence = tonumber(meta[1]) + 1
redis.call('HSET', KEYS[1], 'fence', fence, 'owner', ARGV[1], 'work', 0)
redis.call('SET', KEYS[2], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
local requests = redis.call('HKEYS', KEYS[3])
local out = {'owned', tostring(fence), meta[3], meta[4], (meta[2] == '1' or #requests > 0) and '1' or '0'}
for _, id in ipairs(requests) do out[#out + 1] = id end
return out`;

/** KEYS m l e r z s; ARGV lease leaseMs working graceMs → 1 if the lease is still this node's (renewed), else 0. */
export const RENEW = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'work', ARGV[3])
local grace = tonumber(ARGV[4])
if grace > 0 then
  for i = 1, #KEYS do if i ~= 2 then redis.call('PEXPIRE', KEYS[i], grace) end end
end
return 1`;

/** KEYS m e r z s; ARGV graceMs: the session is viewed, it must not expire yet. */
export const TOUCH = `
local grace = tonumber(ARGV[1])
if grace > 0 then for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], grace) end end
return 1`;

/** KEYS m l; ARGV lease: lets the lease go if it is still this node's. */
export const RELEASE = `
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'work', 0)
end
return 1`;

/** KEYS l r; ARGV lease id frame channel graceMs → 1 if recorded and published, 0 if fenced. */
export const OPEN_REQUEST = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
redis.call('PUBLISH', ARGV[4], 'r' .. ARGV[3])
return 1`;

/** KEYS m r; ARGV id response nodeChannelPrefix session → 1 if this answer was the first (sent to the owner), else 0. */
export const ANSWER = `
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then redis.call('PUBLISH', ARGV[3] .. owner, 'a' .. ARGV[4] .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[2]) end
return 1`;

/**
 * KEYS m e l r z s; ARGV framePrefix reason channel nodeChannelPrefix session node → [first seq,
 * frame…] of the closing events, or nil if there is no such session. A tombstone stays a
 * minute so that a late append learns the session was closed, not lost.
 */
export const CLOSE = `
local meta = redis.call('HMGET', KEYS[1], 'last', 'closed', 'owner')
if not meta[1] or meta[2] then return nil end
local seq = tonumber(meta[1])
local first = seq + 1
local frames = {}
for _, id in ipairs(redis.call('HKEYS', KEYS[4])) do
  seq = seq + 1
  frames[#frames + 1] = ARGV[1] .. seq .. ',"type":"request.cancel","payload":{"id":' .. cjson.encode(id) .. ',"reason":"session_closed"}}}'
end
seq = seq + 1
frames[#frames + 1] = ARGV[1] .. seq .. ',"type":"session.closed","payload":{"reason":' .. cjson.encode(ARGV[2]) .. '}}}'
local message = first .. '\\n' .. table.concat(frames, '\\n')
redis.call('PUBLISH', ARGV[3], 'x' .. message)
-- The owner, if it holds the lease and is not the node closing (which has the frames in this reply), is told.
if redis.call('EXISTS', KEYS[3]) == 1 and meta[3] and meta[3] ~= ARGV[6] then
  redis.call('PUBLISH', ARGV[4] .. meta[3], 'c' .. ARGV[5] .. '\\n' .. message)
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[1], 'closed', 1, 'last', seq)
redis.call('PEXPIRE', KEYS[1], 60000)
local out = {tostring(first)}
for _, frame in ipairs(frames) do out[#out + 1] = frame end
return out`;

/** KEYS l s; ARGV lease seq state graceMs → 1 if saved, 0 if fenced (a state of an older seq is not saved over a newer one). */
export const SAVE_STATE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local saved = redis.call('GET', KEYS[2])
if saved and tonumber(string.match(saved, '^%d+')) > tonumber(ARGV[2]) then return 1 end
redis.call('SET', KEYS[2], ARGV[2] .. '\\n' .. ARGV[3])
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return 1`;

/**
 * KEYS m l r; ARGV nodeChannelPrefix session interrupt → 'owned' (a node holds the lease; with
 * `interrupt` 1 it was sent an interrupt), 'lapsed' (no lease, but its last owner stopped
 * mid-work) or 'idle'.
 */
export const WORK = `
local lease = redis.call('GET', KEYS[2])
if lease then
  if ARGV[3] == '1' then redis.call('PUBLISH', ARGV[1] .. string.match(lease, '^(.*):%d+$'), 'i' .. ARGV[2]) end
  return 'owned'
end
local meta = redis.call('HMGET', KEYS[1], 'work', 'closed')
if meta[2] then return 'idle' end
if meta[1] == '1' or redis.call('HLEN', KEYS[3]) > 0 then return 'lapsed' end
return 'idle'`;
