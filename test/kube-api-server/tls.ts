/**
 * Self-signed TLS material for loopback test servers: one certificate for `localhost` and
 * 127.0.0.1 that is also its own CA, and a client certificate it signed (the API server's
 * credential towards kubelets).
 */
import { generate } from 'selfsigned';

export interface TlsMaterial {
  /** Server certificate (PEM); it is self-signed, so it is also the CA clients trust. */
  cert: string;
  key: string;
  /** A client certificate signed by `cert`'s key. */
  clientCert: string;
  clientKey: string;
}

export async function generateTestCertificate(commonName = 'wasmlet-test'): Promise<TlsMaterial> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 365 * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
    clientCertificate: { cn: `${commonName}-client`, keyType: 'ec', curve: 'P-256', algorithm: 'sha256' },
  });
  if (!pems.clientcert || !pems.clientprivate) throw new Error('selfsigned did not produce a client certificate');
  return { cert: pems.cert, key: pems.private, clientCert: pems.clientcert, clientKey: pems.clientprivate };
}
