import { EventEmitter } from "node:events";
import { AirlockError } from "@airlock/shared";
import type { GatewayLink } from "./link.js";

export interface LinkInfo {
  agentId: string;
  agentName: string;
  group: string | null;
  peer: string;
  connectedAt: Date;
  streams: number;
  version: string;
  hostname: string;
}

interface RegistryEvents {
  online: [link: GatewayLink];
  offline: [link: GatewayLink, err: AirlockError];
}

/**
 * Ready agent links, by agent. An agent may hold more than one link for a
 * moment (a reconnect racing the old link's end), so each agent maps to a set.
 */
export class AgentRegistry extends EventEmitter<RegistryEvents> {
  private readonly byAgent = new Map<string, Set<GatewayLink>>();

  add(link: GatewayLink): void {
    const id = link.identity?.agentId;
    if (!id) throw new AirlockError("INTERNAL", "only authenticated links are registered");
    let set = this.byAgent.get(id);
    if (!set) this.byAgent.set(id, (set = new Set()));
    set.add(link);
    link.once("closed", (err) => {
      set.delete(link);
      if (set.size === 0) this.byAgent.delete(id);
      this.emit("offline", link, err);
    });
    this.emit("online", link);
  }

  isOnline(agentId: string): boolean {
    return (this.byAgent.get(agentId)?.size ?? 0) > 0;
  }

  /**
   * A healthy link for a connection served by one agent or by an agent group:
   * the ready link carrying the fewest streams, so load spreads over a group.
   */
  pick(target: { agentId?: string | null; group?: string | null }): GatewayLink | undefined {
    let best: GatewayLink | undefined;
    for (const [agentId, links] of this.byAgent) {
      for (const link of links) {
        const matches = target.agentId ? agentId === target.agentId : target.group != null && link.identity?.group === target.group;
        if (!matches || link.state !== "ready") continue;
        if (!best || link.activeStreams < best.activeStreams) best = link;
      }
    }
    return best;
  }

  /** Cuts every link of an agent at once (revocation, deletion). */
  disconnect(agentId: string, err: AirlockError): number {
    const links = [...(this.byAgent.get(agentId) ?? [])];
    for (const l of links) l.fail(err);
    return links.length;
  }

  list(): LinkInfo[] {
    const out: LinkInfo[] = [];
    for (const links of this.byAgent.values()) {
      for (const l of links) {
        if (!l.identity) continue;
        out.push({
          agentId: l.identity.agentId,
          agentName: l.identity.agentName,
          group: l.identity.group,
          peer: l.peer,
          connectedAt: l.connectedAt,
          streams: l.activeStreams,
          version: l.hello?.agentVersion ?? "",
          hostname: l.hello?.hostname ?? "",
        });
      }
    }
    return out;
  }

  closeAll(err: AirlockError): void {
    for (const id of [...this.byAgent.keys()]) this.disconnect(id, err);
  }
}
