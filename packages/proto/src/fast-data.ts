// Hand-written encoder for the one hot frame, Data, in either direction.
// Byte-identical to protobuf-es `toBinary` (tested), but skips reflection and
// writes the payload straight into the output buffer: one copy per frame.
//
// AgentFrame/GatewayFrame layout for the Data case (proto3, see tunnel.proto):
//   0x1a <varint len>            field 3 (data), wire type 2
//     0x08 <varint stream_id>    field 1, varint   (omitted when 0)
//     0x12 <varint n> <n bytes>  field 2, bytes    (omitted when empty)
// https://protobuf.dev/programming-guides/encoding/

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

/** Encodes `{frame: {case: "data", value: {streamId, payload}}}` of either frame type. */
export function encodeDataFrame(streamId: number, payload: Uint8Array): Buffer {
  const idPart = streamId === 0 ? 0 : 1 + varintSize(streamId);
  const payloadPart = payload.length === 0 ? 0 : 1 + varintSize(payload.length) + payload.length;
  const inner = idPart + payloadPart;
  const buf = Buffer.allocUnsafe(1 + varintSize(inner) + inner);
  let pos = 0;
  buf[pos++] = 0x1a;
  pos = writeVarint(buf, pos, inner);
  if (streamId !== 0) {
    buf[pos++] = 0x08;
    pos = writeVarint(buf, pos, streamId);
  }
  if (payload.length !== 0) {
    buf[pos++] = 0x12;
    pos = writeVarint(buf, pos, payload.length);
    buf.set(payload, pos);
  }
  return buf;
}
