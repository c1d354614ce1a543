export * from "./canon.js";
export * from "./chain.js";
export * from "./checkpoint.js";
export * from "./material.js";
export * from "./verify.js";
