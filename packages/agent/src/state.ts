import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** What an enrolled agent keeps between runs. The key is a secret: file mode 0600. */
export interface AgentState {
  gateway: string;
  agentId: string;
  agentName: string;
  agentKey: string;
}

const FILE = "agent.json";

export async function loadState(dataDir: string): Promise<AgentState | null> {
  try {
    const s = JSON.parse(await readFile(join(dataDir, FILE), "utf8")) as Partial<AgentState>;
    return s.agentKey && s.agentId && s.gateway ? (s as AgentState) : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

export async function saveState(dataDir: string, state: AgentState): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const tmp = join(dataDir, `${FILE}.tmp`);
  await writeFile(tmp, JSON.stringify(state, null, 2), { mode: 0o600 });
  await rename(tmp, join(dataDir, FILE));
}
