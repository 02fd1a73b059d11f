"""The Lua scripts of the Redis history and read-marker stores.

Redis runs a script atomically and one at a time, so each of these is one
step nobody can see half done; what they publish leaves in the order they ran.
Each touches the keys of one conversation only, which a Redis Cluster keeps
in one slot (``stores/keys.py``); they publish with the command given
(``PUBLISH`` on one Redis, ``SPUBLISH`` on a cluster, to a channel of that slot).

The keys of one conversation ``<key>`` (``<p>`` is the store's prefix; on a
cluster ``<key>`` is in braces, see ``stores/keys.py``):

- ``<p>h:<key>``: a capped stream of the messages as first sent (field ``d``);
- ``<p>trimmed:<key>``: the newest stream id the cap dropped;
- ``<p>states:<key>``: a hash, wire id -> JSON of the current state of each
  kept message that changed (edited, deleted, reacted to), ``rev`` included;
- ``<p>revs:<key>``: a sorted set of ``"<rev> <id>"`` (wire forms, score 0,
  so the members sort by ``rev``) for the changed messages.

Wire ids are fixed width, so comparing them as strings compares them as ids.
The hash and the set only hold messages the stream still keeps: the append
that trims a message drops its state too.
"""

from __future__ import annotations

__all__ = ["AFTER", "APPEND", "BEFORE", "CHANGE", "MARK", "UNREAD"]

# Shared helpers: the wire form of a stream id, and the clock of a
# conversation (Redis's, never behind its newest id or rev, so ids and revs of
# one conversation only ever grow).
_PRELUDE = """
local function wire(sid)
  local ms, seq = string.match(sid, '^(%d+)-(%d+)$')
  return string.rep('0', 15 - #ms) .. ms .. '-' .. string.rep('0', 16 - #seq) .. seq
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Also returns the wire id or rev of the conversation's newest event so far
-- (false for none): a publication that cannot leave from the script carries
-- it, so that receivers can put the conversation's events back in order.
local function clock(stream, revs)
  local ms = now_ms()
  local prev = false
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last > 0 then
    prev = wire(last[1][1])
    local last_ms = tonumber(string.match(last[1][1], '^(%d+)-'))
    if last_ms > ms then ms = last_ms end
  end
  local top = redis.call('ZREVRANGEBYLEX', revs, '+', '-', 'LIMIT', 0, 1)
  if #top > 0 then
    local rev = string.sub(top[1], 1, 32)
    if not prev or rev > prev then prev = rev end
    local rev_ms = tonumber(string.sub(top[1], 1, 15))
    if rev_ms > ms then ms = rev_ms end
  end
  return ms, prev
end
local function next_seq(counter, multiplier, offset)
  return redis.call('INCR', counter) * tonumber(multiplier) + tonumber(offset)
end
local function state_of(states, sid)
  if redis.call('HLEN', states) == 0 then return false end
  return redis.call('HGET', states, wire(sid))
end
local function triplets(entries, states)
  local out = {}
  for _, entry in ipairs(entries) do
    table.insert(out, entry[1])
    table.insert(out, entry[2][2])
    table.insert(out, state_of(states, entry[1]))
  end
  return out
end
"""

# KEYS: stream, trimmed, seq, states, revs[, once ('' for none)[, webhook stream]]
# ARGV: cap, record JSON, channels (space-separated), head, tail, once seconds,
#       publish command, seq multiplier, seq offset[, webhook stream cap,
#       event id, event type, URL...]
# Returns {stream id, 1 if replayed else 0, the previous event (see clock),
#          webhook jobs queued}.
#
# Takes the id from the conversation's clock and its counter (``keys.SeqKey``:
# ids stay unique across conversations), remembers the newest id the cap
# trims away (so ``after`` can tell whether anything was lost) and drops the
# trimmed messages' states, appends, and (given channels) publishes the message framed by head and
# tail on each, in the order given. With an idempotency key (``once``): if it
# holds an id, that id comes back with 1 and nothing is written; otherwise the
# new id is kept under it, so racing retries store exactly once at no extra
# round trip. Given a webhook stream (one Redis only: on a cluster it lives in
# another slot), the message's webhook event is queued there too, one entry
# per URL as ``stores/webhooks.py`` reads them; a refused XADD (the key holds
# something else) leaves the message stored and reports 0 jobs queued.
APPEND = (
    _PRELUDE
    + """
local once = KEYS[6]
if once == '' then once = nil end
if once then
  local prior = redis.call('GET', once)
  if prior then return {prior, 1, false, 0} end
end
local ms, prev = clock(KEYS[1], KEYS[5])
local seq = next_seq(KEYS[3], ARGV[8], ARGV[9])
local cap = tonumber(ARGV[1])
local len = redis.call('XLEN', KEYS[1])
if len >= cap then
  local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - cap + 1)
  redis.call('SET', KEYS[2], old[#old][1])
  for _, entry in ipairs(old) do
    local state = state_of(KEYS[4], entry[1])
    if state then
      redis.call('ZREM', KEYS[5], cjson.decode(state).rev .. ' ' .. wire(entry[1]))
      redis.call('HDEL', KEYS[4], wire(entry[1]))
    end
  end
end
local id = string.format('%d-%d', ms, seq)
redis.call('XADD', KEYS[1], 'MAXLEN', cap, id, 'd', ARGV[2])
local hooks = KEYS[7]
local message
if ARGV[3] ~= '' or hooks then
  local w = wire(id)
  local body = string.sub(ARGV[2], 2, -2)
  message = '{"id":"' .. w .. '",' .. body .. ',"ts":' .. string.format('%d', ms)
    .. ',"rev":"' .. w .. '"}'
end
if ARGV[3] ~= '' then
  local framed = ARGV[4] .. message .. ARGV[5]
  for channel in string.gmatch(ARGV[3], '%S+') do redis.call(ARGV[7], channel, framed) end
end
if once then redis.call('SET', once, id, 'EX', ARGV[6]) end
local queued = 0
if hooks then
  local ts = string.format('%d', ms)
  local event = '{"id":"' .. ARGV[11] .. '","type":"' .. ARGV[12] .. '","ts":' .. ts
    .. ',"data":' .. message .. '}'
  for i = 13, #ARGV do
    local added = redis.pcall('XADD', hooks, 'MAXLEN', '~', ARGV[10], '*',
      'u', ARGV[i], 'i', ARGV[11], 'y', ARGV[12], 't', ts, 'b', event)
    if type(added) == 'table' and added.err then break end
    queued = queued + 1
  end
end
return {id, 0, prev, queued}
"""
)

# KEYS: stream, states
# ARGV: top ('+' or '(<sid>'), count
# Returns flat triplets: stream id, record JSON, current state JSON or false.
BEFORE = (
    _PRELUDE
    + """
return triplets(redis.call('XREVRANGE', KEYS[1], ARGV[1], '-', 'COUNT', ARGV[2]), KEYS[2])
"""
)

# KEYS: stream, trimmed, states, revs
# ARGV: '(<since sid>', since wire id
# Returns {triplets as BEFORE (newer than since, oldest first), newest trimmed
# id or false, states of messages at or before since changed after it}.
AFTER = (
    _PRELUDE
    + """
local out = triplets(redis.call('XRANGE', KEYS[1], ARGV[1], '+'), KEYS[3])
local updates = {}
local since = ARGV[2]
for _, member in ipairs(redis.call('ZRANGEBYLEX', KEYS[4], '[' .. since .. '\\255', '+')) do
  local id = string.sub(member, 34)
  if id <= since then table.insert(updates, redis.call('HGET', KEYS[3], id)) end
end
return {out, redis.call('GET', KEYS[2]), updates}
"""
)

# KEYS: stream, states, revs, seq
# ARGV: stream id, wire id, op, actor, moderates ('1'), text, emoji, add ('1'),
#       channels (space-separated), head, tail, max distinct reactions,
#       publish command, seq multiplier, seq offset
# Returns {'ok', state JSON, previous event (see clock)}, {'same', state JSON}
# (nothing to do), or
# {'not_found' | 'forbidden' | 'too_many'}: core/changes.py's rules.
CHANGE = (
    _PRELUDE
    + """
local sid, id = ARGV[1], ARGV[2]
local entry = redis.call('XRANGE', KEYS[1], sid, sid)
if #entry == 0 then return {'not_found'} end
local raw = redis.call('HGET', KEYS[2], id)
local msg
if raw then
  msg = cjson.decode(raw)
else
  msg = cjson.decode(entry[1][2][2])
  msg.id = id
  msg.ts = tonumber(string.sub(id, 1, 15))
  msg.rev = id
end
if msg.deleted then return {'not_found'} end
local op, actor = ARGV[3], ARGV[4]
local now = now_ms()
if op == 'edit' then
  if msg.from ~= actor then return {'forbidden'} end
  msg.text = ARGV[6]
  msg.edited_ts = now
elseif op == 'delete' then
  if msg.from ~= actor and ARGV[5] ~= '1' then return {'forbidden'} end
  msg.text = ''
  msg.deleted = true
  msg.reactions = nil
  msg.edited_ts = nil
else
  local reactions = msg.reactions or {}
  local emoji, add = ARGV[7], ARGV[8] == '1'
  local users = reactions[emoji] or {}
  local found = nil
  for i, user in ipairs(users) do
    if user == actor then found = i end
  end
  if (found ~= nil) == add then return {'same', raw or cjson.encode(msg)} end
  if add then
    if reactions[emoji] == nil then
      local distinct = 0
      for _ in pairs(reactions) do distinct = distinct + 1 end
      if distinct >= tonumber(ARGV[12]) then return {'too_many'} end
    end
    table.insert(users, actor)
    table.sort(users)
    reactions[emoji] = users
  else
    table.remove(users, found)
    if #users == 0 then reactions[emoji] = nil else reactions[emoji] = users end
  end
  if next(reactions) == nil then msg.reactions = nil else msg.reactions = reactions end
end
local ms, prev = clock(KEYS[1], KEYS[3])
local rev = wire(string.format('%d-%d', ms, next_seq(KEYS[4], ARGV[14], ARGV[15])))
if msg.rev ~= id then redis.call('ZREM', KEYS[3], msg.rev .. ' ' .. id) end
redis.call('ZADD', KEYS[3], 0, rev .. ' ' .. id)
msg.rev = rev
local json = cjson.encode(msg)
redis.call('HSET', KEYS[2], id, json)
if ARGV[9] ~= '' then
  local framed = ARGV[10] .. json .. ARGV[11]
  for channel in string.gmatch(ARGV[9], '%S+') do redis.call(ARGV[13], channel, framed) end
end
return {'ok', json, prev}
"""
)

# KEYS: stream, states
# ARGV: start ('-' or '(<sid>'), user
# Counts the kept messages from start on that are not from user and not deleted.
UNREAD = (
    _PRELUDE
    + """
local count = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+')) do
  if cjson.decode(entry[2][2]).from ~= ARGV[2] then
    local state = state_of(KEYS[2], entry[1])
    if not (state and cjson.decode(state).deleted) then count = count + 1 end
  end
end
return count
"""
)

# KEYS: the user's marker hash
# ARGV: conversation key, message id, seconds to keep the hash, markers at most
# Moves the marker forward only; at the cap a new conversation's marker
# replaces a random one. Returns {marker kept, 1 if it moved}.
MARK = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and current >= ARGV[2] then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {current, 0}
end
if not current and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[1], redis.call('HRANDFIELD', KEYS[1]))
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {ARGV[2], 1}
"""
