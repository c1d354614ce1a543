import type { FastifyError, FastifyInstance } from "fastify";
import { AirlockError } from "@airlock/shared";

/**
 * Every API error is RFC 9457 problem JSON with our stable `code`, so the CLI
 * and scripts can branch on it. Internal errors are logged, not echoed.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any logger / type provider
export function installProblemHandler(app: FastifyInstance<any, any, any, any, any>): void {
  app.setErrorHandler((error: FastifyError | AirlockError, req, reply) => {
    let err: AirlockError;
    if (error instanceof AirlockError) err = error;
    else if ((error as { code?: string }).code === "P2002") err = new AirlockError("ALREADY_EXISTS", "a record with that name already exists");
    else if ((error as FastifyError).validation) err = new AirlockError("INVALID_ARGUMENT", describeValidation(error as FastifyError));
    else if ((error as FastifyError).statusCode && (error as FastifyError).statusCode! < 500) {
      const status = (error as FastifyError).statusCode!;
      err = new AirlockError(status === 404 ? "NOT_FOUND" : status === 401 ? "UNAUTHENTICATED" : "INVALID_ARGUMENT", error.message);
    } else {
      req.log.error({ err: error }, "request failed");
      err = new AirlockError("INTERNAL", "internal error; see the gateway log", { cause: error });
    }
    if (err.status >= 500 && err.code !== "INTERNAL") req.log.warn({ code: err.code, err: err.message }, "request failed");
    // The query is left out: sign-in callbacks carry authorization codes and state there.
    if (err.status === 401) req.log.info({ code: err.code, reason: err.message, ip: req.ip, url: req.url.split("?")[0] }, "authentication rejected");
    void reply
      .status(err.status)
      .type("application/problem+json")
      .send({ type: `https://airlock.dev/errors/${err.code.toLowerCase()}`, title: err.code, status: err.status, detail: err.message, code: err.code, ...err.details });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).type("application/problem+json").send({ type: "about:blank", title: "NOT_FOUND", status: 404, detail: `no route ${req.method} ${req.url}`, code: "NOT_FOUND" });
  });
}

/** One readable line per schema violation, naming allowed values and unknown properties. */
function describeValidation(error: FastifyError): string {
  const ctx = error.validationContext ?? "body";
  const lines = (error.validation ?? []).map((v) => {
    const where = `${ctx}${v.instancePath.replace(/\//g, ".")}`;
    const p = v.params as { allowedValues?: unknown[]; additionalProperty?: string };
    if (p.additionalProperty) return `${where}: unknown property "${p.additionalProperty}"`;
    if (p.allowedValues) return `${where} must be one of: ${p.allowedValues.join(", ")}`;
    return `${where} ${v.message ?? "is invalid"}`;
  });
  return [...new Set(lines)].join("; ") || error.message;
}
