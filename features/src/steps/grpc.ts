import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Then, When } from '@cucumber/cucumber';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { REPO_ROOT } from '../support/app.js';
import type { SettleWorld } from '../support/world.js';

interface HealthClient extends grpc.Client {
  Check(
    request: { service: string },
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: { status: string }) => void,
  ): grpc.ClientUnaryCall;
}

/** A plain gRPC client built from the standard health.proto that Settle publishes, as any prober would. */
function healthClient(address: string): HealthClient {
  const definition = protoLoader.loadSync(join(REPO_ROOT, 'proto', 'proto', 'grpc', 'health', 'v1', 'health.proto'), {
    keepCase: true,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => HealthClient } } };
  };
  return new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
}

When('I check the health of {string} on the payments gRPC port', async function (this: SettleWorld, service: string) {
  const client = healthClient(this.app.grpcAddress);
  try {
    this.health = await new Promise((resolve) => {
      client.Check({ service }, { deadline: new Date(Date.now() + 5_000) }, (error, response) =>
        resolve(error ? { error } : { status: response?.status ?? 'no answer' }),
      );
    });
  } finally {
    client.close();
  }
});

Then('the health check answers {word}', function (this: SettleWorld, status: string) {
  const outcome = this.health ?? {};
  assert.equal(outcome.error, undefined, `Check failed: ${outcome.error?.message}`);
  assert.equal(outcome.status, status);
});

Then('the health check fails with {word}', function (this: SettleWorld, code: string) {
  const outcome = this.health ?? {};
  assert.ok(outcome.error, `Check answered ${outcome.status}`);
  assert.equal(grpc.status[outcome.error.code], code);
});
