/** A failure reported by the gateway as problem JSON, or by the network. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Thin REST client: JSON in, JSON out, problem JSON turned into ApiError. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | undefined,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    const data = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (!res.ok) throw new ApiError(res.status, String(data.code ?? res.status), String(data.detail ?? res.statusText));
    return data as T;
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    try {
      return await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new ApiError(0, "UNREACHABLE", `cannot reach the gateway at ${this.baseUrl}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
  }

  /** A GET whose body is streamed (exports, NDJSON): the Response once the status is known to be OK. */
  async stream(path: string): Promise<Response> {
    const res = await this.send("GET", path);
    if (!res.ok || !res.body) {
      const text = await res.text();
      const data = (text.startsWith("{") ? JSON.parse(text) : {}) as Record<string, unknown>;
      throw new ApiError(res.status, String(data.code ?? res.status), String(data.detail ?? res.statusText));
    }
    return res;
  }

  /** NDJSON lines of a streamed GET, parsed one at a time (bounded memory). */
  async *lines<T>(path: string): AsyncGenerator<T> {
    for await (const line of textLines(await this.stream(path))) yield JSON.parse(line) as T;
  }

  get<T>(path: string) {
    return this.request<T>("GET", path);
  }
  post<T>(path: string, body?: unknown) {
    return this.request<T>("POST", path, body ?? {});
  }
  patch<T>(path: string, body: unknown) {
    return this.request<T>("PATCH", path, body);
  }
  delete<T>(path: string) {
    return this.request<T>("DELETE", path);
  }
}

/** The non-blank lines of a streamed body (NDJSON), holding at most one partial line. */
export async function* textLines(res: Response): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
    rest += decoder.decode(piece, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line.trim()) yield line;
    }
  }
  rest += decoder.decode();
  if (rest.trim()) yield rest;
}
