import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from './protoDir.js';

/**
 * One set of loader options for every contract, so clients and servers agree on the
 * JavaScript shape of a message: camelCase fields, enums as their names, int64 as
 * numbers (amounts are at most 10^12, well inside 2^53), defaults filled in so a
 * missing field reads as '' or 0 rather than undefined.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

const cache = new Map<string, grpc.GrpcObject>();

/** Loads a `.proto` file (relative to PROTO_DIR) once per process. */
export function loadGrpcObject(file: string): grpc.GrpcObject {
  let loaded = cache.get(file);
  if (!loaded) {
    loaded = grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS));
    cache.set(file, loaded);
  }
  return loaded;
}

/** Walks a dotted package path (`settle.payments.v1`) down a loaded grpc object. */
export function lookupService(root: grpc.GrpcObject, path: string): grpc.ServiceClientConstructor {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function') throw new Error(`gRPC service ${path} is not defined in the loaded protos`);
  return node as grpc.ServiceClientConstructor;
}

/** Turns a gRPC deadline budget into the absolute deadline grpc-js expects. */
export const deadlineIn = (deadlineMs: number): Date => new Date(Date.now() + deadlineMs);
