/**
 * The node's Lease in `kube-node-lease`: the cheap heartbeat the node lifecycle controller reads.
 * Renewed with optimistic concurrency (a conflict re-reads and tries again at once).
 */
import type { V1Lease } from '@kubernetes/client-node';
import { apiStatus, microTime, type KubeClients } from './kube-client.ts';

export const LEASE_NAMESPACE = 'kube-node-lease';

export class NodeLease {
  #lease: V1Lease | undefined;

  constructor(
    private readonly clients: KubeClients,
    private readonly nodeName: string,
    private readonly durationSeconds: number,
    /** The Node's uid, for the owner reference (the Lease goes when the Node goes). */
    private readonly nodeUid: () => string | undefined,
  ) {}

  /** The last lease written, as the server answered it. */
  get current(): V1Lease | undefined {
    return this.#lease;
  }

  /** Renews (or creates) the lease. Throws when the API cannot be reached. */
  async renew(now = Date.now()): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!this.#lease) {
        try {
          this.#lease = await this.clients.coordination.readNamespacedLease({ name: this.nodeName, namespace: LEASE_NAMESPACE });
        } catch (err) {
          if (apiStatus(err) !== 404) throw err;
          this.#lease = await this.create(now);
          return;
        }
      }
      const next = this.body(now);
      next.metadata!.resourceVersion = this.#lease.metadata?.resourceVersion;
      try {
        this.#lease = await this.clients.coordination.replaceNamespacedLease({ name: this.nodeName, namespace: LEASE_NAMESPACE, body: next });
        return;
      } catch (err) {
        const status = apiStatus(err);
        if (status !== 409 && status !== 404) throw err;
        this.#lease = undefined; // someone else wrote it, or it was deleted: read again
      }
    }
    throw new Error(`lease ${LEASE_NAMESPACE}/${this.nodeName} kept conflicting`);
  }

  private async create(now: number): Promise<V1Lease> {
    return this.clients.coordination.createNamespacedLease({ namespace: LEASE_NAMESPACE, body: this.body(now) });
  }

  private body(now: number): V1Lease {
    const uid = this.nodeUid();
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.nodeName,
        namespace: LEASE_NAMESPACE,
        ...(uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.nodeName, uid }] } : {}),
      },
      // MicroTime goes as a string: client-node would send a Date with millisecond precision only.
      spec: { holderIdentity: this.nodeName, leaseDurationSeconds: this.durationSeconds, renewTime: microTime(now) as never },
    };
  }
}
