// Serves and calls the tunnel with @grpc/grpc-js using protobuf-es v2 messages:
// grpc-js only needs a path and (de)serializers per method, which we derive
// from the generated service descriptor instead of loading .proto at run time.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { encodeDataFrame } from "./fast-data.js";
import {
  AgentFrameSchema,
  AgentTunnel,
  GatewayFrameSchema,
  type AgentFrame,
  type GatewayFrame,
} from "./gen/airlock/tunnel/v1/tunnel_pb.js";

type FrameShape = { frame: { case: string | undefined; value?: unknown } };

function codec<D extends DescMessage>(schema: D) {
  return {
    serialize: (m: MessageShape<D>): Buffer => {
      const f = (m as unknown as FrameShape).frame;
      if (f.case === "data") {
        const d = f.value as { streamId: number; payload: Uint8Array };
        return encodeDataFrame(d.streamId, d.payload);
      }
      const bytes = toBinary(schema, m);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    // Unknown fields are dropped so a newer peer's additions cost nothing here.
    deserialize: (b: Buffer): MessageShape<D> => fromBinary(schema, b, { readUnknownFields: false }),
  };
}

const agentFrame = codec(AgentFrameSchema as GenMessage<AgentFrame>);
const gatewayFrame = codec(GatewayFrameSchema as GenMessage<GatewayFrame>);

/** Fully-qualified gRPC path of the one tunnel method. */
export const LINK_PATH = `/${AgentTunnel.typeName}/${AgentTunnel.method.link.name}`;

export const agentTunnelDefinition = {
  link: {
    path: LINK_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: agentFrame.serialize,
    requestDeserialize: agentFrame.deserialize,
    responseSerialize: gatewayFrame.serialize,
    responseDeserialize: gatewayFrame.deserialize,
    originalName: "link",
  },
} satisfies grpc.ServiceDefinition;

export type LinkServerCall = grpc.ServerDuplexStream<AgentFrame, GatewayFrame>;
export type LinkClientCall = grpc.ClientDuplexStream<AgentFrame, GatewayFrame>;

export interface AgentTunnelClient extends grpc.Client {
  link(metadata?: grpc.Metadata, options?: grpc.CallOptions): LinkClientCall;
}

export const AgentTunnelClient = grpc.makeGenericClientConstructor(
  agentTunnelDefinition,
  "AgentTunnel",
) as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => AgentTunnelClient;

export const encodeAgentFrame = agentFrame.serialize;
export const decodeAgentFrame = agentFrame.deserialize;
export const encodeGatewayFrame = gatewayFrame.serialize;
export const decodeGatewayFrame = gatewayFrame.deserialize;
