import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { EVENT_SCHEMA_VERSIONS, registerUpcaster, schemaVersionOf, upcast } from './versions.js';

/**
 * A fake event type at schema version 3, so the upcasters v1 → v2 → v3 registered here run.
 * No real event has a version above 1 yet, so the test declares its own current version.
 */
const FAKE = 'TestOnlyWidgetResized';
const versions = EVENT_SCHEMA_VERSIONS as Record<string, number>;

describe('upcast', () => {
  beforeAll(() => {
    versions[FAKE] = 3;
    // v1 { size } → v2 { width, height } → v3 { width, height, unit }
    registerUpcaster(FAKE, 1, (data) => {
      const { size, ...rest } = data as { size: number; steps?: string[] };
      return { ...rest, width: size, height: size, steps: [...(rest.steps ?? []), 'v1→v2'] };
    });
    registerUpcaster(FAKE, 2, (data) => {
      const d = data as { width: number; height: number; steps?: string[] };
      return { ...d, unit: 'px', steps: [...(d.steps ?? []), 'v2→v3'] };
    });
  });
  afterAll(() => {
    delete versions[FAKE];
  });

  it('knows the current schema version of every event, 1 for a type it does not know', () => {
    expect(schemaVersionOf('RequestRegistered')).toBe(1);
    expect(schemaVersionOf('PreferencesRegistered')).toBe(1);
    expect(schemaVersionOf('NoSuchEvent')).toBe(1);
    expect(schemaVersionOf(FAKE)).toBe(3);
  });

  it('passes an event already at the current version through unchanged', () => {
    const event = {
      type: 'PaymentAuthorized',
      version: 1,
      data: { attempt: 1, providerPaymentId: 'pp-1' },
      streamId: 'request-req-0001',
    };
    const result = upcast(event);
    expect(result).toBe(event);
    expect(result).toEqual({
      type: 'PaymentAuthorized',
      version: 1,
      data: { attempt: 1, providerPaymentId: 'pp-1' },
      streamId: 'request-req-0001',
    });
  });

  it('passes a current-version event of a type with upcasters through without running them', () => {
    const event = { type: FAKE, version: 3, data: { width: 4, height: 5, unit: 'px' } };
    expect(upcast(event)).toBe(event);
  });

  it('applies the registered upcasters in order, up to the current version', () => {
    const event = { type: FAKE, version: 1, data: { size: 7 }, streamId: 'widget-1', globalPosition: 42 };
    expect(upcast(event)).toEqual({
      type: FAKE,
      version: 3,
      data: { width: 7, height: 7, steps: ['v1→v2', 'v2→v3'], unit: 'px' },
      streamId: 'widget-1',
      globalPosition: 42,
    });
  });

  it('starts from the version the event was written with', () => {
    const event = { type: FAKE, version: 2, data: { width: 3, height: 9 } };
    expect(upcast(event)).toEqual({
      type: FAKE,
      version: 3,
      data: { width: 3, height: 9, unit: 'px', steps: ['v2→v3'] },
    });
  });

  it('does not modify the stored event it upcasts', () => {
    const event = { type: FAKE, version: 1, data: { size: 2 } };
    upcast(event);
    expect(event).toEqual({ type: FAKE, version: 1, data: { size: 2 } });
  });

  it('throws, naming the type and versions, when an upcaster is missing', () => {
    expect(() => upcast({ type: FAKE, version: 0, data: {} })).toThrow(`no upcaster for ${FAKE} v0 → v1`);
    expect(() => upcast({ type: 'RequestRegistered', version: 0, data: {} })).toThrow(
      'no upcaster for RequestRegistered v0 → v1',
    );
  });

  it('throws when a step in the middle of the chain is missing', () => {
    const GAPPY = 'TestOnlyGappyEvent';
    versions[GAPPY] = 3;
    try {
      registerUpcaster(GAPPY, 1, (data) => data);
      expect(() => upcast({ type: GAPPY, version: 1, data: {} })).toThrow(`no upcaster for ${GAPPY} v2 → v3`);
    } finally {
      delete versions[GAPPY];
    }
  });
});
