-- fsd.lua: a Wireshark dissector for fsd/1 and its options extension (OPT/OACK, SUM).
--
-- Install:  fsd wireshark > ~/.local/lib/wireshark/plugins/fsd.lua   (then restart Wireshark)
-- One-off:  tshark -X lua_script:fsd.lua -r lab.pcap
-- Filters:  fsd.opcode == 3, fsd.block, fsd.size, fsd.filename, fsd.error.code,
--           fsd.error.message, fsd.option ("name=value"), fsd.option.name, fsd.option.value,
--           fsd.greeting, fsd.length, fsd.sha256, fsd.crc32 (the SUM after the last DAT with sha256=1 or crc32=1)
--
-- fsd/1 runs over TCP (default port 10000); it is recognised on any other port by the server's
-- greeting ("Hello from NAME's fileserver") and can be chosen with "Decode As...". Packets split
-- across segments are reassembled, segments carrying several packets are split. Violations (a DAT
-- over the block size, an unknown opcode, a bad string) show as expert info. The protocol itself:
-- docs/PROTOCOL.md in the fsd repository.

local fsd = Proto("fsd", "fsd/1 file service")

local OPCODES = {
  [1] = "RRQ", [2] = "WRQ", [3] = "DAT", [4] = "ACK",
  [5] = "ERR", [6] = "DRQ", [7] = "OPT", [8] = "OACK", [9] = "SUM",
}
local ERRORS = {
  [0] = "other", [1] = "file not found", [2] = "access violation",
  [3] = "disk full or allocation exceeded", [4] = "illegal operation",
  [5] = "unknown transfer ID", [6] = "file already exists", [7] = "no such user",
  [8] = "option negotiation failed",
}

local BLOCK_SIZE = 512        -- DAT bytes unless an OACK granted another blksize
local MAX_STRING = 1024       -- longest string a peer accepts (zero byte not counted)
local MAX_NAME = 255          -- longest file name
local MAX_OPTIONS = 16        -- most pairs in one OPT or OACK
local SEARCH_LIMIT = 65536    -- past this many bytes without a zero, stop waiting for one
local GREETING_PREFIX = "Hello from "
local SHA256_LENGTH = 32      -- bytes of the digest a SUM carries with sha256=1
local CRC32_LENGTH = 4        -- and with crc32=1 (the default check)
local BROKEN = -1             -- pdu_length: these bytes cannot be framed as fsd

local f = fsd.fields
f.opcode = ProtoField.uint16("fsd.opcode", "Opcode", base.DEC, OPCODES)
f.length = ProtoField.uint32("fsd.length", "Packet length", base.DEC)
f.block = ProtoField.uint16("fsd.block", "Block", base.DEC)
f.size = ProtoField.uint16("fsd.size", "Data size", base.DEC)
f.data = ProtoField.bytes("fsd.data", "Data")
f.greeting = ProtoField.string("fsd.greeting", "Greeting")
f.filename = ProtoField.stringz("fsd.filename", "File name")
f.error_code = ProtoField.uint16("fsd.error.code", "Error code", base.DEC, ERRORS)
f.error_message = ProtoField.stringz("fsd.error.message", "Error message")
f.option_count = ProtoField.uint16("fsd.option.count", "Option count", base.DEC)
f.option = ProtoField.string("fsd.option", "Option")
f.option_name = ProtoField.stringz("fsd.option.name", "Option name")
f.option_value = ProtoField.stringz("fsd.option.value", "Option value")
f.sha256 = ProtoField.bytes("fsd.sha256", "SHA-256")
f.crc32 = ProtoField.uint32("fsd.crc32", "CRC-32", base.HEX)
f.undecoded = ProtoField.bytes("fsd.undecoded", "Not decoded")

local e = {
  oversize = ProtoExpert.new("fsd.oversize", "DAT larger than the block size",
    expert.group.PROTOCOL, expert.severity.ERROR),
  opcode = ProtoExpert.new("fsd.unknown_opcode", "Unknown opcode",
    expert.group.PROTOCOL, expert.severity.ERROR),
  string = ProtoExpert.new("fsd.bad_string", "Bad string",
    expert.group.MALFORMED, expert.severity.ERROR),
  options = ProtoExpert.new("fsd.bad_options", "Bad option count",
    expert.group.PROTOCOL, expert.severity.ERROR),
  error = ProtoExpert.new("fsd.error", "fsd error packet",
    expert.group.RESPONSE_CODE, expert.severity.NOTE),
  broken = ProtoExpert.new("fsd.not_decoded", "Not decoded after a framing error",
    expert.group.MALFORMED, expert.severity.WARN),
  cleartext = ProtoExpert.new("fsd.cleartext_password", "Password in clear text",
    expert.group.SECURITY or expert.group.PROTOCOL, expert.severity.WARN),
}
fsd.experts = { e.oversize, e.opcode, e.string, e.options, e.error, e.broken, e.cleartext }

local tcp_stream = Field.new("tcp.stream")
local tcp_seq = Field.new("tcp.seq")

-- Per TCP stream, as the first pass meets its packets: the block size in effect, whether an OPT
-- waits for its request, and which directions lost their framing.
local streams = {}
-- What the first pass decided for each packet, so later passes (clicks in the GUI) agree with it.
local decided = {}

function fsd.init()
  streams = {}
  decided = {}
end

local function stream_state(pinfo)
  local field = tcp_stream()
  local key = field and field.value or 0
  local st = streams[key]
  if not st then
    st = { blksize = BLOCK_SIZE, opt = false, broken = {}, sum = SHA256_LENGTH }
    streams[key] = st
  end
  return st
end

-- Offset of the zero ending the string at `from`; nil if more bytes are needed; BROKEN if none
-- comes within SEARCH_LIMIT bytes.
local function string_end(tvb, from)
  local available = tvb:len() - from
  local window = math.min(available, SEARCH_LIMIT)
  if window > 0 then
    local at = string.find(tvb:raw(from, window), "\0", 1, true)
    if at then return from + at - 1 end
  end
  if available >= SEARCH_LIMIT then return BROKEN end
  return nil
end

-- Length of `count` zero-terminated strings starting at `from`, counted from `offset`.
local function strings_length(tvb, offset, from, count)
  local at = from
  for _ = 1, count do
    local zero = string_end(tvb, at)
    if zero == nil or zero == BROKEN then return zero end
    at = zero + 1
  end
  return at - offset
end

-- Length of the packet at `offset` (possibly more than the bytes at hand), nil when even that is
-- not known yet, BROKEN when the bytes are no fsd packet.
local function pdu_length(tvb, offset, sum)
  local available = tvb:len() - offset
  if available < 2 then return nil end
  local op = tvb(offset, 2):uint()
  if op == 1 or op == 2 then return strings_length(tvb, offset, offset + 2, 1) end
  if op == 6 then return 2 end
  if op == 9 then return 2 + sum end
  if available < 4 then return nil end
  if op == 4 then return 4 end
  if op == 5 then return strings_length(tvb, offset, offset + 4, 1) end
  if op == 7 or op == 8 then
    local count = tvb(offset + 2, 2):uint()
    if count == 0 or count > MAX_OPTIONS then return BROKEN end
    return strings_length(tvb, offset, offset + 4, 2 * count)
  end
  if op == 3 then
    if available < 6 then return nil end
    return 6 + tvb(offset + 4, 2):uint()
  end
  return BROKEN
end

local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local extra
    if c < 0x80 then extra = 0
    elseif c >= 0xc2 and c <= 0xdf then extra = 1
    elseif c >= 0xe0 and c <= 0xef then extra = 2
    elseif c >= 0xf0 and c <= 0xf4 then extra = 3
    else return false end
    if i + extra > n then return false end
    for k = 1, extra do
      local cc = s:byte(i + k)
      if cc < 0x80 or cc > 0xbf then return false end
    end
    i = i + extra + 1
  end
  return true
end

-- Adds the zero-terminated string at `r(at)` as `field`; returns its text and the offset past it.
local function add_string(tree, field, r, at, what)
  local zero = at
  while r(zero, 1):uint() ~= 0 do zero = zero + 1 end
  local piece = r(at, zero - at + 1)
  local item = tree:add_packet_field(field, piece, ENC_UTF_8)
  local raw = zero > at and r:raw(at, zero - at) or ""
  if zero - at > MAX_STRING then
    item:add_proto_expert_info(e.string, what .. " longer than " .. MAX_STRING .. " bytes")
  elseif not valid_utf8(raw) then
    item:add_proto_expert_info(e.string, what .. " is not valid UTF-8")
  end
  return piece:stringz(ENC_UTF_8), zero + 1, item
end

local function quoted(text)
  return '"' .. text:gsub('[\\"]', "\\%0") .. '"'
end

local dissect_op = {}

dissect_op[1] = function(r, tree)
  local name, _, item = add_string(tree, f.filename, r, 2, "file name")
  if #name > MAX_NAME then
    item:add_proto_expert_info(e.string, "file name longer than " .. MAX_NAME .. " bytes")
  end
  return OPCODES[r(0, 2):uint()] .. " " .. quoted(name)
end
dissect_op[2] = dissect_op[1]

dissect_op[3] = function(r, tree, limit)
  local block, size = r(2, 2):uint(), r(4, 2):uint()
  tree:add(f.block, r(2, 2))
  local size_item = tree:add(f.size, r(4, 2))
  if size > 0 then tree:add(f.data, r(6, size)) end
  if size > limit then
    size_item:add_proto_expert_info(e.oversize,
      "DAT of " .. size .. " bytes, the block size is " .. limit)
  end
  local prefix = size > 0 and r:raw(6, math.min(size, #GREETING_PREFIX)) or ""
  if block == 1 and prefix == GREETING_PREFIX then
    tree:add(f.greeting, r(6, size), r:raw(6, size))
  end
  return "DAT " .. block .. " (" .. size .. " bytes)"
end

dissect_op[4] = function(r, tree)
  tree:add(f.block, r(2, 2))
  return "ACK " .. r(2, 2):uint()
end

dissect_op[5] = function(r, tree)
  local code = r(2, 2):uint()
  local item = tree:add(f.error_code, r(2, 2))
  local message = add_string(tree, f.error_message, r, 4, "error message")
  item:add_proto_expert_info(e.error, "ERR " .. code .. " " .. message)
  return "ERR " .. code .. " " .. message
end

dissect_op[6] = function()
  return "DRQ"
end

dissect_op[7] = function(r, tree)
  local count = r(2, 2):uint()
  tree:add(f.option_count, r(2, 2))
  local at = 4
  local pairs_text = {}
  for _ = 1, count do
    local start = at
    local name_end = start
    while r(name_end, 1):uint() ~= 0 do name_end = name_end + 1 end
    local value_end = name_end + 1
    while r(value_end, 1):uint() ~= 0 do value_end = value_end + 1 end
    local pair = r(start, value_end - start + 1)
    local text = r(start, name_end - start + 1):stringz(ENC_UTF_8) .. "="
      .. r(name_end + 1, value_end - name_end):stringz(ENC_UTF_8)
    local option = tree:add(f.option, pair, text)
    local name = add_string(option, f.option_name, r, start, "option name")
    if name:lower() == "password" then
      option:add_proto_expert_info(e.cleartext,
        "a login's password in clear text: anyone on the path can read it (use --tls)")
    end
    add_string(option, f.option_value, r, name_end + 1, "option value")
    at = value_end + 1
    pairs_text[#pairs_text + 1] = text
  end
  return OPCODES[r(0, 2):uint()] .. " " .. table.concat(pairs_text, " ")
end
dissect_op[8] = dissect_op[7]

-- The sender's checksum of the whole file, after the last DAT: CRC-32 (crc32=1) or SHA-256 (sha256=1).
dissect_op[9] = function(r, tree)
  if r:len() == 2 + CRC32_LENGTH then
    tree:add(f.crc32, r(2, CRC32_LENGTH))
    return "SUM crc32 " .. r(2, CRC32_LENGTH):bytes():tohex(true)
  end
  tree:add(f.sha256, r(2, SHA256_LENGTH))
  return "SUM " .. r(2, 8):bytes():tohex(true) .. "..."
end

-- The value of option `wanted` in an OPT or OACK (a repeated name: the last), nil if absent.
local function option_value(r, wanted)
  local at = 4
  local found = nil
  for _ = 1, r(2, 2):uint() do
    local name_end = at
    while r(name_end, 1):uint() ~= 0 do name_end = name_end + 1 end
    local value_end = name_end + 1
    while r(value_end, 1):uint() ~= 0 do value_end = value_end + 1 end
    if name_end > at and r:raw(at, name_end - at):lower() == wanted then
      found = value_end > name_end + 1 and r:raw(name_end + 1, value_end - name_end - 1) or ""
    end
    at = value_end + 1
  end
  return found
end

-- Follows the block size from packet to packet (first pass only): an OACK's blksize holds until
-- the transfer it negotiated ends (a short DAT, or an ERR); a request without OPT is plain fsd/1.
local function track(st, r)
  local op = r(0, 2):uint()
  if op == 7 or op == 8 then
    -- The SUM to come: as asked (OPT: an upload's, sent by the client) or granted (OACK).
    st.sum = option_value(r, "crc32") == "1" and CRC32_LENGTH or SHA256_LENGTH
  end
  if op == 7 then
    st.opt = true
  elseif op == 1 or op == 2 or op == 6 then
    if not st.opt then st.blksize = BLOCK_SIZE end
    st.opt = false
  elseif op == 8 then
    local blksize = tonumber(option_value(r, "blksize"))
    if blksize then st.blksize = blksize end
  elseif op == 3 then
    if r(4, 2):uint() < st.blksize then st.blksize = BLOCK_SIZE end
  elseif op == 5 then
    st.blksize = BLOCK_SIZE
    st.opt = false
  end
end

local function dissect_pdu(r, pinfo, tree, st, key)
  local op = r(0, 2):uint()
  local limit = decided[key]
  if not pinfo.visited or limit == nil then
    limit = st.blksize
    decided[key] = limit
    track(st, r)
  end
  local sub = tree:add(fsd, r)
  sub:add(f.opcode, r(0, 2))
  sub:add(f.length, r, r:len()):set_generated()
  local info = dissect_op[op](r, sub, limit)
  sub:append_text(": " .. info)
  return info
end

local function dissect_broken(r, tree, reason)
  local sub = tree:add(fsd, r)
  if r:len() >= 2 then
    local op = r(0, 2):uint()
    local item = sub:add(f.opcode, r(0, 2))
    if OPCODES[op] == nil then
      item:add_proto_expert_info(e.opcode, "unknown opcode " .. op)
      reason = reason or ("unknown opcode " .. op)
    elseif op == 7 or op == 8 then
      local count = r:len() >= 4 and r(2, 2):uint() or 0
      local count_item = sub:add(f.option_count, r(2, 2))
      count_item:add_proto_expert_info(e.options,
        OPCODES[op] .. " with " .. count .. " options: 1 to " .. MAX_OPTIONS .. " expected")
      reason = reason or (OPCODES[op] .. " with " .. count .. " options")
    else
      sub:add_proto_expert_info(e.string, "string without its zero byte")
      reason = reason or (OPCODES[op] .. " with an unterminated string")
    end
  end
  sub:add(f.undecoded, r)
  sub:append_text(": " .. reason)
  return reason
end

local function set_columns(pinfo, infos)
  if #infos == 0 then return end
  local text = table.concat(infos, ", ")
  if tostring(pinfo.cols.protocol) == "FSD" then
    pinfo.cols.info:append(", " .. text)
  else
    pinfo.cols.protocol = "FSD"
    pinfo.cols.info:set(text)
  end
end

function fsd.dissector(tvb, pinfo, tree)
  local total = tvb:len()
  local st = stream_state(pinfo)
  local direction = tostring(pinfo.src) .. ":" .. pinfo.src_port
  local infos = {}
  local offset = 0
  local broken_key = "broken:" .. pinfo.number
  if (not pinfo.visited and st.broken[direction]) or (pinfo.visited and decided[broken_key]) then
    decided[broken_key] = true
    local sub = tree:add(fsd, tvb())
    sub:add(f.undecoded, tvb()):add_proto_expert_info(e.broken)
    sub:append_text(": not decoded (after a framing error)")
    set_columns(pinfo, { "not decoded (after a framing error)" })
    return total
  end
  while offset < total do
    -- A SUM's length follows the negotiation (first pass); later passes reuse what was decided.
    local sum_key = "sum:" .. pinfo.number .. ":" .. offset
    if not pinfo.visited then decided[sum_key] = st.sum end
    local len = pdu_length(tvb, offset, decided[sum_key] or st.sum)
    if len == BROKEN then
      infos[#infos + 1] = dissect_broken(tvb:range(offset), tree)
      if not pinfo.visited then st.broken[direction] = true end
      offset = total
    elseif len == nil or offset + len > total then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = len == nil and DESEGMENT_ONE_MORE_SEGMENT or offset + len - total
      break
    else
      local key = pinfo.number .. ":" .. offset .. ":" .. total
      infos[#infos + 1] = dissect_pdu(tvb:range(offset, len), pinfo, tree, st, key)
      offset = offset + len
    end
  end
  set_columns(pinfo, infos)
  return total
end

-- A server over its limits sends ERR (code 0 to 8, printable text) instead of the greeting.
local function is_refusal(tvb)
  if tvb:len() < 6 or tvb(0, 2):uint() ~= 5 or tvb(2, 2):uint() > 8 then return false end
  local text = tvb:raw(4, math.min(tvb:len() - 4, 64))
  local printable = text:match("^[\32-\126]+%z") or (#text == 64 and text:match("^[\32-\126]+$"))
  return printable ~= nil
end

-- A session on any port: the server speaks first with DAT 1 "Hello from ...". A greeting split
-- into small segments is recognised by its first 7 bytes when they open the stream.
local function heuristic(tvb, pinfo, tree)
  local seq = tcp_seq()
  local at_start = seq and seq.value == 1
  if at_start and is_refusal(tvb) then
    pinfo.conversation = fsd
    fsd.dissector(tvb, pinfo, tree)
    return true
  end
  local have = math.min(tvb:len() - 6, #GREETING_PREFIX)
  if have < #GREETING_PREFIX and not (at_start and have >= 1) then return false end
  if tvb(0, 4):uint() ~= 0x00030001 then return false end
  local size = tvb(4, 2):uint()
  if size < #GREETING_PREFIX or size >= BLOCK_SIZE then return false end
  if tvb:raw(6, have) ~= GREETING_PREFIX:sub(1, have) then return false end
  pinfo.conversation = fsd
  fsd.dissector(tvb, pinfo, tree)
  return true
end

-- The port (Preferences > Protocols > FSD), 10000 unless changed; any other with "Decode As...".
local DEFAULT_PORT = 10000
fsd.prefs.port = Pref.uint("TCP port", DEFAULT_PORT, "TCP port of the fsd file server")
local tcp_port = DissectorTable.get("tcp.port")
local registered_port = DEFAULT_PORT
tcp_port:add(registered_port, fsd)

function fsd.prefs_changed()
  if fsd.prefs.port ~= registered_port then
    tcp_port:remove(registered_port, fsd)
    registered_port = fsd.prefs.port
    tcp_port:add(registered_port, fsd)
  end
end

fsd:register_heuristic("tcp", heuristic)
