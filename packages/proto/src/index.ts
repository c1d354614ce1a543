export * from "./gen/airlock/tunnel/v1/tunnel_pb.js";
export * from "./grpc.js";
export { create } from "@bufbuild/protobuf";

/** Tunnel protocol version spoken by this build; see docs/tunnel.md. */
export const TUNNEL_PROTOCOL_VERSION = 1;
