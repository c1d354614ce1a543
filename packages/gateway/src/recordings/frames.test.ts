// The recording frame codec against byte sequences built here by hand (not
// by the encoder under test), fed whole, split at every offset, and a byte at
// a time; and corrupt input refused with a reason.
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder, frameHeader, MAX_T, type Frame } from "./frames.js";

/** One frame's bytes, written out field by field as docs/recordings.md lays them down. */
function handBuilt(t: number, dir: number, data: number[]): number[] {
  const u32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  return [...u32(t), dir, ...u32(data.length), ...data];
}

const FRAMES: Array<{ t: number; dir: 0 | 1; data: number[] }> = [
  { t: 0, dir: 0, data: [0x71, 0x75, 0x69, 0x74] },
  { t: 17, dir: 1, data: [] },
  { t: 0x01020304, dir: 1, data: Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff) },
  { t: 0xffffffff, dir: 0, data: [0] },
  { t: 5, dir: 1, data: [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xff] },
];
const BYTES = Buffer.from(FRAMES.flatMap((f) => handBuilt(f.t, f.dir, f.data)));
const EXPECTED: Frame[] = FRAMES.map((f) => ({ t: f.t, dir: f.dir, data: Buffer.from(f.data) }));

const plain = (frames: Frame[]) => frames.map((f) => ({ t: f.t, dir: f.dir, data: [...f.data] }));

function decodeAll(pieces: Buffer[]): Frame[] {
  const d = new FrameDecoder();
  const out = pieces.flatMap((p) => d.push(p));
  d.end();
  return out;
}

describe("frame codec", () => {
  it("the encoder writes exactly the hand-built layout", () => {
    expect(Buffer.concat(EXPECTED.map(encodeFrame)).equals(BYTES)).toBe(true);
  });

  it("decodes the whole sequence in one piece", () => {
    expect(plain(decodeAll([BYTES]))).toEqual(plain(EXPECTED));
  });

  it("decodes the same frames when split at every byte offset", () => {
    for (let cut = 0; cut <= BYTES.length; cut++) {
      const got = decodeAll([BYTES.subarray(0, cut), BYTES.subarray(cut)]);
      expect(plain(got), `split at ${cut}`).toEqual(plain(EXPECTED));
    }
  });

  it("decodes the same frames when split in three at many offset pairs", () => {
    for (let a = 0; a <= BYTES.length; a += 3) {
      for (let b = a; b <= BYTES.length; b += 5) {
        const got = decodeAll([BYTES.subarray(0, a), BYTES.subarray(a, b), BYTES.subarray(b)]);
        expect(plain(got), `split at ${a}, ${b}`).toEqual(plain(EXPECTED));
      }
    }
  });

  it("decodes the same frames fed one byte at a time", () => {
    const pieces = [...BYTES].map((b) => Buffer.from([b]));
    expect(plain(decodeAll(pieces))).toEqual(plain(EXPECTED));
  });

  it("a frame's payload does not change when the caller's input buffers are reused afterwards", () => {
    const input = Buffer.from(BYTES);
    const d = new FrameDecoder();
    const first = d.push(input.subarray(0, 20)); // the first frame, and part of the header of the second
    const copy = first.map((f) => ({ ...f, data: Buffer.from(f.data) }));
    const rest = d.push(input.subarray(20));
    d.end();
    expect(plain([...copy, ...rest])).toEqual(plain(EXPECTED));
  });

  it("saturates t at 2^32-1 and clamps negative offsets to 0", () => {
    expect(frameHeader(MAX_T + 5000, 0, 0).readUInt32BE(0)).toBe(MAX_T);
    expect(frameHeader(-3, 1, 0).readUInt32BE(0)).toBe(0);
  });

  it("refuses a direction other than 0 or 1", () => {
    const bad = Buffer.from(handBuilt(1, 2, [1, 2, 3]));
    expect(() => new FrameDecoder().push(bad)).toThrow(/direction 2/);
  });

  it("refuses a length beyond the limit before buffering it", () => {
    const d = new FrameDecoder(1024);
    expect(() => d.push(Buffer.from(handBuilt(1, 0, []).map((b, i) => (i === 6 ? 0x10 : b))))).toThrow(/exceeds 1024/);
  });

  it("end() refuses input cut inside a header or a payload", () => {
    for (const cut of [3, 9, BYTES.length - 1]) {
      const d = new FrameDecoder();
      d.push(BYTES.subarray(0, cut));
      expect(() => d.end(), `cut at ${cut}`).toThrow(/ended inside a frame/);
    }
  });
});
