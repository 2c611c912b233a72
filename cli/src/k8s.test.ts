import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEYS, loadConfig } from '@settle/platform';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ROLES } from './start.js';

/*
 * The Kubernetes manifests (infra/k8s) against what `settle` is: roles it knows, settings it
 * reads, ports it serves. No cluster here: this checks that they agree, not that they run.
 */

const K8S = join(fileURLToPath(new URL('.', import.meta.url)), '../../infra/k8s');

interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string } }[];
}
interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    selector?: Record<string, unknown>;
    template?: { metadata: { labels: Record<string, string> }; spec: PodSpec };
    jobTemplate?: { spec: { template: { spec: PodSpec } } };
    ports?: { name: string; port: number; targetPort: string | number }[];
  };
}

function load(): Manifest[] {
  const kustomization = parseAllDocuments(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as {
    resources: string[];
  };
  return kustomization.resources.flatMap((file) =>
    parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      return doc.toJS() as Manifest;
    }),
  );
}

const manifests = load();
const deployments = manifests.filter((m) => m.kind === 'Deployment');
const config = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'settle-config')!.data!;
const container = (d: Manifest) => d.spec!.template!.spec.containers.find((c) => c.name === 'settle')!;
const rolesOf = (d: Manifest) => {
  const args = container(d).args ?? [];
  expect(args.slice(0, 2), d.metadata.name).toEqual(['start', '--roles']);
  return args[2]!.split(',');
};

describe('Kubernetes manifests (infra/k8s)', () => {
  it('deploy every production role, each in a Deployment that runs only roles settle knows', () => {
    const deployed = deployments.flatMap(rolesOf);
    for (const role of deployed) expect(ROLES).toContain(role);
    expect(new Set(deployed)).toEqual(new Set(ROLES.filter((r) => r !== 'sandbox')));
    expect(deployed).toHaveLength(new Set(deployed).size);
  });

  it('set only settings settle reads, and a production configuration settle starts with once the secrets are there', () => {
    const known = new Set(CONFIG_KEYS.map((k) => k.env));
    for (const name of Object.keys(config)) expect(known, name).toContain(name);
    for (const d of deployments) for (const e of container(d).env ?? []) expect(known, e.name).toContain(e.name);
    // The Secret README.md tells operators to create, with stand-in values.
    const secrets = {
      SETTLE_EVENT_STORE: 'postgres://settle:secret@postgres:5432/settle',
      SETTLE_REDIS_URL: 'redis://redis:6379',
      SETTLE_SECRETS_KEY: 'ab'.repeat(32),
      SETTLE_GATEWAY_WEBHOOK_SECRET: 'whsec_b3BlcmF0b3Itb3duLXNlY3JldC0wMDAwMDAwMDA=',
    };
    const readme = readFileSync(join(K8S, 'README.md'), 'utf8');
    for (const name of Object.keys(secrets)) expect(readme).toContain(`--from-literal=${name}=`);
    const loaded = loadConfig({ ...config, ...secrets }, '/nonexistent/.env');
    expect(loaded.production).toBe(true);
    expect(loaded.jwtPrivateKey).toBe(config.SETTLE_JWT_PRIVATE_KEY);
    // Without the secrets, production refuses to start (so the Secret is not optional).
    expect(() => loadConfig({ ...config }, '/nonexistent/.env')).toThrow(/SETTLE_SECRETS_KEY/);
  });

  it('probe and scrape every pod on the port settle serves health and metrics on, and mount the signing key where the config says', () => {
    const httpPort = Number(config.SETTLE_HTTP_PORT);
    for (const d of deployments) {
      const c = container(d);
      expect(c.envFrom?.map((e) => e.configMapRef?.name ?? e.secretRef?.name)).toEqual([
        'settle-config',
        'settle-secrets',
      ]);
      expect(c.ports?.find((p) => p.name === 'http')?.containerPort, d.metadata.name).toBe(httpPort);
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/health/live', port: 'http' });
      expect(c.startupProbe?.httpGet).toEqual({ path: '/health/live', port: 'http' });
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/health/ready', port: 'http' });
      const annotations = (d.spec!.template!.metadata as { annotations?: Record<string, string> }).annotations ?? {};
      expect(annotations['prometheus.io/port']).toBe(String(httpPort));
      expect(annotations['prometheus.io/path']).toBe('/metrics');
      const jwt = c.volumeMounts?.find((m) => config.SETTLE_JWT_PRIVATE_KEY!.startsWith(`${m.mountPath}/`));
      expect(jwt, `${d.metadata.name} mounts the signing key`).toBeDefined();
      expect(d.spec!.template!.spec.volumes?.find((v) => v.name === jwt!.name)?.secret?.secretName).toBe('settle-jwt');
      // Labels the Deployment selects on are on its pods.
      const selector = (d.spec!.selector as { matchLabels: Record<string, string> }).matchLabels;
      expect(d.spec!.template!.metadata.labels).toMatchObject(selector);
    }
  });

  it('route the API and the payments service to the pods that serve them, where the other roles look for them', () => {
    const service = (name: string) => manifests.find((m) => m.kind === 'Service' && m.metadata.name === name)!;
    const podsOf = (s: Manifest) =>
      deployments.filter((d) =>
        Object.entries(s.spec!.selector as Record<string, string>).every(
          ([k, v]) => d.spec!.template!.metadata.labels[k] === v,
        ),
      );
    const api = podsOf(service('settle-api'));
    expect(api.flatMap(rolesOf).sort()).toEqual(['command', 'query']);
    const payments = service('settle-payments');
    expect(podsOf(payments).flatMap(rolesOf)).toEqual(['payments']);
    const grpc = payments.spec!.ports!.find((p) => p.name === 'grpc')!;
    expect(config.SETTLE_PAYMENTS_URL).toBe(`settle-payments:${grpc.port}`);
    const target = container(podsOf(payments)[0]!).ports!.find((p) => p.name === grpc.targetPort)!;
    expect(target.containerPort).toBe(Number(config.SETTLE_GRPC_PORT));
  });
});
