/**
 * The start of an HTTP answer (for an error message), then the rest discarded so the socket is
 * freed: a receiver's error page can be any size. Whitespace runs become one space.
 */
export async function answerSnippet(res: Response, maxBytes: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // Only for the error text; a broken answer changes nothing.
  } finally {
    reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString("utf8").replace(/\s+/g, " ").trim();
}
