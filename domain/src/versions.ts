/**
 * Schema versions and upcasters. Every stored event records the schema version it was
 * written with; reads pass it through `upcast` so deciders, projections and replays only
 * ever see the current shape.
 */
export const EVENT_SCHEMA_VERSIONS: Readonly<Record<string, number>> = {
  RequestRegistered: 1,
  PaymentAuthorizationRequested: 1,
  PaymentAuthorized: 1,
  PaymentAttemptFailed: 1,
  PaymentDeclined: 1,
  PaymentFailed: 1,
  CallbackReceived: 1,
  PaymentSettled: 1,
  RequestCancelled: 1,
  MerchantNotified: 1,
  MerchantNotificationFailed: 1,
  RequestArchived: 1,
  PreferencesRegistered: 1,
  ClientRegistered: 1,
  ClientSecretRotated: 1,
  ClientDisabled: 1,
  WebhookSecretRotated: 1,
  OperatorActionRecorded: 1,
};

export const schemaVersionOf = (type: string): number => EVENT_SCHEMA_VERSIONS[type] ?? 1;

export type Upcaster = (data: unknown) => unknown;

/** upcasters[type][fromVersion] turns data of `fromVersion` into `fromVersion + 1`. */
const upcasters: Record<string, Record<number, Upcaster>> = {};

export function registerUpcaster(type: string, fromVersion: number, upcaster: Upcaster): void {
  (upcasters[type] ??= {})[fromVersion] = upcaster;
}

export function upcast<T extends { type: string; version: number; data: unknown }>(event: T): T {
  const target = schemaVersionOf(event.type);
  if (event.version >= target) return event;
  let data = event.data;
  for (let v = event.version; v < target; v++) {
    const step = upcasters[event.type]?.[v];
    if (!step) throw new Error(`no upcaster for ${event.type} v${v} → v${v + 1}`);
    data = step(data);
  }
  return { ...event, data, version: target };
}
