/**
 * What a closed lattice's authentication costs per message, measured on this thread: each
 * operation repeated for a fixed time, reported as µs per operation. A batch of 16 small calls
 * stands for a turn's traffic to one target; what a message costs in all is its framing plus its
 * authentication plus the receiver's checks.
 */
import { encodeItem, frameBatch, decodeBatch, hostKeyFromSeed, type BatchAuth, type BatchHeader } from '../host/lattice/envelope.ts';
import { generateKeyPair, LatticeTrust, mintMemberCredentials } from '../host/index.ts';
import { frameReplyBatch, readReplyBatch, REPLY_OK } from '../host/lattice/replies.ts';
import { SequenceWindow } from '../host/lattice/replay.ts';
import { signMessage, verifyMessage } from '../host/lattice/signed-message.ts';
import { NonceCache } from '../host/lattice/replay.ts';

export interface AuthCost {
  what: string;
  micros: number;
}

/** µs per call of `fn`, over about `ms` milliseconds (after a short warm-up). */
function time(fn: (i: number) => void, ms = 300): number {
  for (let i = 0; i < 200; i++) fn(i);
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let k = 0; k < 50; k++) fn(n++);
    t = performance.now();
  }
  return ((t - t0) * 1000) / n;
}

export async function authCosts(): Promise<AuthCost[]> {
  const key = generateKeyPair('account');
  const issuer = { lattice: 'authbench', issuer: key.publicKey, issuerSeed: key.seed };
  const [aCreds, bCreds] = [await mintMemberCredentials(issuer, { role: 'host' }), await mintMemberCredentials(issuer, { role: 'host' })];
  const [a, b] = [LatticeTrust.closed(aCreds), LatticeTrust.closed(bCreds)];
  const [ak, bk] = [hostKeyFromSeed(aCreds.seed), hostKeyFromSeed(bCreds.seed)];
  const open = LatticeTrust.insecure('authbench');
  const items = Array.from({ length: 16 }, (_, i) => encodeItem({ id: i.toString(36), origin: 'MCALLER', operation: 'Echo', msg: new Uint8Array(64), deadline: Date.now() + 60_000 }));
  const header = (seq: number): BatchHeader => ({ hostId: ak.publicKey, target: 'actor.MBENCH', sent: Date.now(), reply: '_INBOX.bench', session: 's', seq });
  const signed: BatchAuth = { kind: 'signed', token: aCreds.token };
  const mac: BatchAuth = { kind: 'mac', peers: [ak.peer(bk.publicKey)!] };
  const signedFrame = frameBatch(header(0), items, ak, signed);
  const macFrame = frameBatch(header(1), items, ak, mac);
  const openFrame = frameBatch(header(2), items, ak, { kind: 'open' });
  decodeBatch(signedFrame, { trust: b, receiver: bk }); // b verifies a's credential once (cached from then on)
  const entries = Array.from({ length: 16 }, (_, i) => [i.toString(36), REPLY_OK, new Uint8Array(64)] as const).flat();
  const replySigned = frameReplyBatch({ kind: 'signed', token: bCreds.token, key: bk }, '_INBOX.bench', entries);
  const replyMac = frameReplyBatch({ kind: 'mac', key: bk, peer: bk.peer(ak.publicKey)! }, '_INBOX.bench', entries);
  const replyOpen = frameReplyBatch({ kind: 'open', hostId: bk.publicKey }, '_INBOX.bench', entries);
  const noop = () => {};
  readReplyBatch(replySigned, { trust: a, key: ak, reply: '_INBOX.bench' }, noop);
  const window = new SequenceWindow({ freshnessMs: 60_000 });
  const ctlPayload = new TextEncoder().encode('{"actor":"MBENCH"}');
  const ctlHeaders = signMessage(a, 'wasmlet.x.ctl.actor.stop', '_INBOX.c', ctlPayload)!;
  const uncachedIssuer = LatticeTrust.closed(bCreds);
  return [
    { what: 'batch of 16: frame, open lattice (no authentication)', micros: time(() => frameBatch(header(3), items, ak, { kind: 'open' })) },
    { what: 'batch of 16: frame and sign (Ed25519, credential attached)', micros: time(() => frameBatch(header(4), items, ak, signed)) },
    { what: 'batch of 16: frame and MAC for one receiver (HMAC-SHA256)', micros: time(() => frameBatch(header(5), items, ak, mac)) },
    { what: 'batch of 16: decode, open lattice', micros: time(() => decodeBatch(openFrame, { trust: open, receiver: bk })) },
    { what: 'batch of 16: verify signature (credential cached) and decode', micros: time(() => decodeBatch(signedFrame, { trust: b, receiver: bk })) },
    { what: 'batch of 16: verify MAC and decode', micros: time(() => decodeBatch(macFrame, { trust: b, receiver: bk })) },
    { what: 'replay check (sequence window)', micros: time((i) => window.accept(ak.publicKey, 's', i, Date.now(), Date.now())) },
    { what: 'reply batch of 16: frame, open lattice', micros: time(() => frameReplyBatch({ kind: 'open', hostId: bk.publicKey }, '_INBOX.bench', entries)) },
    { what: 'reply batch of 16: frame and MAC', micros: time(() => frameReplyBatch({ kind: 'mac', key: bk, peer: bk.peer(ak.publicKey)! }, '_INBOX.bench', entries)) },
    { what: 'reply batch of 16: frame and sign', micros: time(() => frameReplyBatch({ kind: 'signed', token: bCreds.token, key: bk }, '_INBOX.bench', entries)) },
    { what: 'reply batch of 16: read, open lattice', micros: time(() => readReplyBatch(replyOpen, { trust: open, key: ak, reply: '_INBOX.bench' }, noop)) },
    { what: 'reply batch of 16: verify MAC and read', micros: time(() => readReplyBatch(replyMac, { trust: a, key: ak, reply: '_INBOX.bench' }, noop)) },
    { what: 'member credential: verify, first time (not cached)', micros: time(() => LatticeTrust.closed(aCreds).member(bCreds.token), 200) },
    { what: 'member credential: cached', micros: time(() => uncachedIssuer.member(aCreds.token)) },
    { what: 'control request: sign (headers)', micros: time(() => signMessage(a, 'wasmlet.x.ctl.actor.stop', '_INBOX.c', ctlPayload)) },
    {
      what: 'control request: verify (headers)',
      micros: time(() => verifyMessage(b, { subject: 'wasmlet.x.ctl.actor.stop', reply: '_INBOX.c', data: ctlPayload, headers: ctlHeaders }, { roles: ['host'], nonces: new NonceCache(), freshnessMs: 60_000 })),
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const c of await authCosts()) process.stdout.write(`${c.micros.toFixed(1).padStart(8)} µs  ${c.what}\n`);
}
