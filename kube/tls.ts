/**
 * The kubelet API's serving certificate when none is configured: self-signed (as the kubelet does
 * without --tls-cert-file), for the node's address and hostname. The API server's log proxy does
 * not verify kubelet certificates unless told to.
 */
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

export interface ServingCertificate {
  cert: string;
  key: string;
}

export async function selfSignedServingCertificate(nodeName: string, names: string[]): Promise<ServingCertificate> {
  const altNames = [...new Set(names)].map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n }));
  const pems = await generate([{ name: 'commonName', value: `${nodeName}@wasmlet` }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 365 * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
