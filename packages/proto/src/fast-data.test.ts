import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AgentFrameSchema, GatewayFrameSchema } from "./gen/airlock/tunnel/v1/tunnel_pb.js";
import { decodeAgentFrame, decodeGatewayFrame, encodeAgentFrame, encodeGatewayFrame } from "./grpc.js";

describe("fast Data frame encoding", () => {
  const ids = [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 21, 2 ** 32 - 1];
  const sizes = [0, 1, 127, 128, 16_384, 65_536, 300_000];
  it("is byte-identical to protobuf-es for both frame types", () => {
    for (const streamId of ids) {
      for (const n of sizes) {
        const payload = new Uint8Array(n).map((_, i) => (i * 31 + streamId) & 0xff);
        const agent = create(AgentFrameSchema, { frame: { case: "data", value: { streamId, payload } } });
        const gw = create(GatewayFrameSchema, { frame: { case: "data", value: { streamId, payload } } });
        const ref = Buffer.from(toBinary(AgentFrameSchema, agent));
        expect(encodeAgentFrame(agent).equals(ref)).toBe(true);
        expect(encodeGatewayFrame(gw).equals(Buffer.from(toBinary(GatewayFrameSchema, gw)))).toBe(true);
        const back = decodeAgentFrame(encodeAgentFrame(agent));
        expect(back.frame.case).toBe("data");
        expect(back.frame.value).toMatchObject({ streamId });
        expect(Buffer.from((back.frame.value as { payload: Uint8Array }).payload).equals(Buffer.from(payload))).toBe(true);
        expect(decodeGatewayFrame(encodeGatewayFrame(gw)).frame.case).toBe("data");
      }
    }
  });
});
