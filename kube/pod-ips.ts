/**
 * Pod IPs. With a pod CIDR (`--pod-cidr`, or the Node's `spec.podCIDR` set by the cluster), each
 * pod gets an address of its own from that range, kept while the pod runs and released when it
 * finishes or goes; the pod's HTTP servers listen on it. Without one, every pod's IP is the node's
 * address (as for `hostNetwork` pods).
 *
 * The addresses must be bindable on this machine. On Linux a loopback range (`127.0.0.0/8`) is, with
 * no setup; a routed range is once the kernel treats it as local, which one command does:
 * `ip route add local <cidr> dev lo` (see docs/kubernetes.md). `checkBindable` tells which.
 */
import { createServer } from 'node:net';
import { Address4, Address6 } from 'ip-address';
import { WasmletError } from '../host/index.ts';

/** A parsed CIDR: its family and the first and last addresses pods may get. */
export interface PodCidr {
  cidr: string;
  family: 4 | 6;
  first: bigint;
  last: bigint;
}

/** Allocations larger than this are never scanned (a /16 of IPv4 has 65 534). */
const MAX_RANGE = 1n << 20n;

/** Parses `10.244.1.0/24` or `fd00:10::/64`; throws a WasmletError naming the problem. */
export function parsePodCidr(cidr: string): PodCidr {
  const v4 = cidr.includes('.') && !cidr.includes(':');
  const bad = (why: string) => new WasmletError('INVALID_POD_CIDR', `pod CIDR ${JSON.stringify(cidr)}: ${why}`);
  if (!/\/\d{1,3}$/.test(cidr)) throw bad('expected address/prefix, e.g. 10.244.1.0/24');
  let addr: Address4 | Address6;
  try {
    addr = v4 ? new Address4(cidr) : new Address6(cidr);
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (addr.startAddress().bigInt() !== addr.bigInt()) throw bad(`host bits set; the range starts at ${addr.startAddress().correctForm()}`);
  const start = addr.startAddress().bigInt();
  const end = addr.endAddress().bigInt();
  // IPv4 ranges of 4 addresses or more keep their network and broadcast addresses out, as subnets do.
  const reserved = v4 && end - start >= 3n ? 1n : 0n;
  const first = start + reserved;
  const last = end - reserved;
  if (last < first) throw bad('no address left for pods');
  return { cidr, family: v4 ? 4 : 6, first, last };
}

export function formatAddress(family: 4 | 6, value: bigint): string {
  return family === 4 ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
}

function addressValue(family: 4 | 6, ip: string): bigint | undefined {
  try {
    return family === 4 ? new Address4(ip).bigInt() : new Address6(ip).bigInt();
  } catch {
    return undefined;
  }
}

/** Where each pod's address comes from. */
export interface PodAddresses {
  /** The pod's address (the same one until released). Throws a WasmletError when none is left. */
  allocate(uid: string, preferred?: string): string;
  release(uid: string): void;
  /** The pod CIDR, when pods get addresses of their own. */
  readonly cidr: string | undefined;
}

/** No pod CIDR: every pod's address is the node's. */
export function nodeAddressForAll(address: string): PodAddresses {
  return { allocate: () => address, release: () => {}, cidr: undefined };
}

/** Hands out the addresses of a pod CIDR, one per pod uid. */
export class PodIpAllocator implements PodAddresses {
  readonly range: PodCidr;
  readonly #byUid = new Map<string, string>();
  readonly #taken = new Set<string>();
  readonly #reserved: Set<string>;
  #next: bigint;

  /** `reserved`: addresses never handed out (e.g. the node's own, when it lies in the range). */
  constructor(range: PodCidr, reserved: string[] = []) {
    this.range = range;
    this.#reserved = new Set(reserved.map((ip) => addressValue(range.family, ip)).filter((v) => v !== undefined).map((v) => formatAddress(range.family, v)));
    this.#next = range.first;
  }

  get cidr(): string {
    return this.range.cidr;
  }

  contains(ip: string): boolean {
    const v = addressValue(this.range.family, ip);
    return v !== undefined && v >= this.range.first && v <= this.range.last;
  }

  /** The pod's address: the one it has, else `preferred` when free and in range (a pod adopted after a restart), else the next free one. */
  allocate(uid: string, preferred?: string): string {
    const had = this.#byUid.get(uid);
    if (had) return had;
    let ip: string | undefined;
    if (preferred && this.contains(preferred)) {
      const canonical = formatAddress(this.range.family, addressValue(this.range.family, preferred)!);
      if (!this.#taken.has(canonical) && !this.#reserved.has(canonical)) ip = canonical;
    }
    ip ??= this.#scan();
    this.#byUid.set(uid, ip);
    this.#taken.add(ip);
    return ip;
  }

  release(uid: string): void {
    const ip = this.#byUid.get(uid);
    if (!ip) return;
    this.#byUid.delete(uid);
    this.#taken.delete(ip);
  }

  get inUse(): number {
    return this.#byUid.size;
  }

  /** Round-robin from the last address handed out, so a released address is not reused at once. */
  #scan(): string {
    const { first, last, family } = this.range;
    const size = last - first + 1n;
    const tries = size < MAX_RANGE ? size : MAX_RANGE;
    for (let i = 0n; i < tries; i++) {
      const v = this.#next;
      this.#next = v >= last ? first : v + 1n;
      const ip = formatAddress(family, v);
      if (!this.#taken.has(ip) && !this.#reserved.has(ip)) return ip;
    }
    throw new WasmletError('POD_CIDR_EXHAUSTED', `no free address left in pod CIDR ${this.range.cidr} (${this.#byUid.size} pods hold one)`);
  }
}

/** Resolves when `ip` can be bound on this machine; rejects with a message saying how to make it so. */
export async function checkBindable(ip: string, cidr: string): Promise<void> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, ip, () => resolve());
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new WasmletError(
      'POD_CIDR_NOT_LOCAL',
      `pod CIDR ${cidr}: cannot bind ${ip} on this machine (${code ?? (err as Error).message}); make the range local first, e.g. \`ip route add local ${cidr} dev lo\` (as root), or use a loopback range such as 127.10.0.0/24`,
      { cause: err },
    );
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
