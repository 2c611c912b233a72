import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';

/** PEM file paths for gRPC TLS (SETTLE_GRPC_TLS_CERT / _KEY / _CA); empty strings mean unset. */
export interface GrpcTlsFiles {
  cert?: string;
  key?: string;
  ca?: string;
}

/**
 * The payments service's credentials: plaintext without a certificate; TLS with one; and mutual
 * TLS when a CA is given too — then only clients holding a certificate that CA signed may call.
 */
export function grpcServerCredentials(files: GrpcTlsFiles): grpc.ServerCredentials | undefined {
  if (!files.cert || !files.key) return undefined;
  const ca = files.ca ? readFileSync(files.ca) : null;
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: readFileSync(files.cert), private_key: readFileSync(files.key) }],
    ca !== null,
  );
}

/**
 * The dispatcher's credentials: TLS when a CA is given (the service's certificate must chain to
 * it), presenting its own certificate when cert and key are set too (mTLS); plaintext otherwise.
 */
export function grpcClientCredentials(files: GrpcTlsFiles): grpc.ChannelCredentials | undefined {
  if (!files.ca) return undefined;
  const mine = files.cert && files.key ? { key: readFileSync(files.key), cert: readFileSync(files.cert) } : undefined;
  return grpc.credentials.createSsl(readFileSync(files.ca), mine?.key ?? null, mine?.cert ?? null);
}
